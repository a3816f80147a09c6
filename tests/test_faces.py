import numpy as np
import pytest
from conftest import face_frame

from emotion_core.constants import FACE_DISPLAY_SIZE, FACE_INPUT_SIZE
from emotion_core.faces import FaceDetector, crop_face, face_input_from_crop
from emotion_core.media import Frame


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


def test_detects_the_face_with_landmarks(detector: FaceDetector) -> None:
    (boxes, probs, pts), = detector.detect([face_frame()])
    assert len(boxes) == 1 and probs[0] > 0.95
    x1, y1, x2, y2 = boxes[0]
    assert 170 < x1 < x2 < 470 and 30 < y1 < y2 < 330  # inside the pasted portrait
    assert pts.shape == (1, 5, 2)
    (lx, _ly), (rx, _ry) = pts[0][:2]
    assert lx < rx  # left eye left of right eye (image coordinates)


def test_no_face_in_a_blank_frame(detector: FaceDetector) -> None:
    (boxes, _, _), = detector.detect([np.full((360, 640, 3), 90, np.uint8)])
    assert len(boxes) == 0


def test_track_yields_every_frame(detector: FaceDetector) -> None:
    frames = [Frame(i * 0.2, face_frame(shift=i * 3)) for i in range(4)]
    frames.insert(2, Frame(0.3, np.full((360, 640, 3), 90, np.uint8)))
    out = list(detector.track(frames, batch_size=3))
    assert [fr.t for fr, _ in out] == [f.t for f in frames]
    assert out[2][1] is None and all(o is not None for i, (_, o) in enumerate(out) if i != 2)
    obs = out[0][1]
    assert obs.crop_rgb.shape == (FACE_DISPLAY_SIZE, FACE_DISPLAY_SIZE, 3)
    assert obs.face_input.shape == (FACE_INPUT_SIZE, FACE_INPUT_SIZE)
    assert obs.face_input.min() >= 0 and obs.face_input.max() <= 1


def test_tracking_follows_the_same_face(detector: FaceDetector) -> None:
    """A second, larger face appearing does not take over from the face already followed."""
    base = face_frame()
    two = np.full((360, 1000, 3), 120, np.uint8)
    two[:, :640] = base
    from PIL import Image
    from skimage import data

    big = np.asarray(Image.fromarray(data.astronaut()).resize((340, 340)))
    two[10:350, 650:990] = big
    frames = [Frame(0.0, np.pad(base, ((0, 0), (0, 360), (0, 0)), constant_values=120)), Frame(0.2, two)]
    out = [o for _, o in detector.track(frames)]
    assert out[1].n_faces == 2
    assert out[1].box[0] < 640  # still the first (left) face


def _tilted_face(angle_deg: float = 20.0, scale: float = 70.0, centre: tuple[float, float] = (60.0, 55.0)):
    """A frame with two bright "eyes" whose landmarks are FACE_TEMPLATE rotated, scaled and moved."""
    from emotion_core.constants import FACE_TEMPLATE

    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    pts = (np.asarray(FACE_TEMPLATE) - 0.5) * scale @ rot.T + centre
    img = np.zeros((120, 120, 3), np.uint8)
    for x, y in pts[:2]:
        img[int(y) - 2: int(y) + 3, int(x) - 2: int(x) + 3] = 255
    return img, pts


def test_crop_alignment_levels_the_eyes() -> None:
    img, pts = _tilted_face()
    assert abs(pts[0, 1] - pts[1, 1]) > 8  # tilted in the frame
    crop = crop_face(img, np.array([20, 20, 100, 100]), pts, margin=0.0, align=True, size=100)
    rows = np.flatnonzero(crop[..., 0].max(1) > 128)
    assert rows.max() - rows.min() < 12  # both bright patches (each ~9 rows tall) now on the same rows


def test_aligned_landmarks_land_on_the_template_whatever_the_pose() -> None:
    from emotion_core.constants import FACE_TEMPLATE
    from emotion_core.faces import landmarks_in_crop

    for angle, scale in ((-25.0, 40.0), (0.0, 90.0), (15.0, 60.0)):
        _, pts = _tilted_face(angle, scale)
        got = landmarks_in_crop(np.array([0, 0, 1, 1]), pts, align=True, size=160)
        assert np.allclose(got, np.asarray(FACE_TEMPLATE) * 160, atol=1e-6)
    # without alignment the box decides: its centre goes to the crop's centre
    box = np.array([10.0, 20.0, 50.0, 60.0])
    got = landmarks_in_crop(box, np.array([[30.0, 40.0]] * 5), margin=0.0, align=False, size=160)
    assert np.allclose(got, 80.0)


def test_face_input_is_grey_48() -> None:
    x = face_input_from_crop(np.full((160, 160, 3), 255, np.uint8))
    assert x.shape == (48, 48) and x.dtype == np.float32 and np.allclose(x, 1.0)
