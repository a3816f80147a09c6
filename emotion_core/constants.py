"""Every number the pipeline shares lives here, so training and inference cannot drift apart."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
)
"""The eight RAVDESS classes, in RAVDESS order (emotion code = index + 1)."""

# FER2013 folder names -> index in EMOTIONS. FER2013 has no "calm".
FER_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
FER_TO_EMOTION: dict[str, str] = {
    "angry": "angry",
    "disgust": "disgust",
    "fear": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprise": "surprised",
}
FACE_EMOTIONS: tuple[str, ...] = tuple(e for e in EMOTIONS if e != "calm")
"""The seven classes the face model predicts (EMOTIONS without calm), in EMOTIONS order."""

# --- audio -----------------------------------------------------------------------------------
SAMPLE_RATE = 16_000
N_FFT = 400  # 25 ms window
HOP_LENGTH = 160  # 10 ms hop -> 100 mel frames per second
N_MELS = 80  # Whisper's front end, so the pretrained encoder sees what it was trained on
SILENCE_DBFS = -55.0
"""A track whose loudest 50 ms stays below this level (dBFS, RMS) carries no usable voice."""
VOICE_WINDOW_S = 4.0
"""Length of one voice-model input; longer audio is analysed in overlapping windows and pooled."""
VOICE_HOP_S = 2.0
MIN_VOICE_S = 0.5
"""Shorter active speech than this gives no voice answer."""

# --- video / faces ---------------------------------------------------------------------------
FRAME_RATE = 5.0
MIN_FRAME_RATE, MAX_FRAME_RATE = 0.5, 30.0
"""Video frames read per second for the face branch (``--frame-rate`` may change it within these bounds)."""
LONG_RECORDING_S = 120.0
LONG_FRAME_RATE = 2.5
"""Videos longer than LONG_RECORDING_S are read at LONG_FRAME_RATE unless a rate is chosen: still 10 frames
per 4-second timeline window, at half the face branch's cost, which dominates session-length recordings
(benchmarks/bench_long.py)."""
"""Frames per second sampled from a video for the face branch."""
DETECT_MAX_SIDE = 640
"""Frames are downscaled so their longer side is at most this before face detection."""
MIN_FACE_SIZE = 48
"""Smallest face (pixels, in the downscaled frame) MTCNN looks for: the face model's own input size
(a smaller face would be upsampled from too little detail); it also makes detection faster than
MTCNN's default of 20 (benchmarks/bench_long.py)."""
MIRROR_TTA_MAX_FRAMES = 150
"""Up to this many face frames (30 s at 5 fps) each face is also read mirrored and the two averaged;
longer recordings skip it, their many frames already average out (halves the face model's cost)."""
FACE_MIN_PROB = 0.90
FACE_MARGIN = 0.0
"""Extra border around the MTCNN box, as a fraction of the box size. Measured on PublicTest faces
re-detected by MTCNN (reports/face_crop_study.json): the bare box matches FER2013's tight framing
best (67.5 % vs 60.2 % at 0.15 and 51.6 % at 0.25)."""
FACE_ALIGN = True
"""Align crops to FACE_TEMPLATE by the five landmarks when training a face model (``train face-wild``); at
inference the face checkpoint says how it was trained (``faces.crop_settings``: the FER-only model of
2026-11-24 reads the bare, unaligned box)."""
FACE_TEMPLATE: tuple[tuple[float, float], ...] = ((0.319, 0.385), (0.681, 0.385), (0.500, 0.599), (0.348, 0.788),
                                                  (0.652, 0.788))
"""Where an aligned face's five MTCNN landmarks go (left eye, right eye, nose, mouth corners), as fractions of
the crop side: the mean landmarks of the FER2013 train faces MTCNN finds (85.9 %), made left-right symmetric
(``python -m emotion_core train face-data --data ../shared/data --out runs/faces`` prints the mean). Aligned
faces keep FER2013's framing, which the face model learnt, with eyes level and one scale for everyone."""
STILL_FRAMING: dict[str, tuple[int, int, int, str]] = {"fer": (2, 32, 30, "reflect"), "sfew": (1, 48, 72, "constant"),
                                                       "wild": (1, 48, 60, "reflect")}
"""How a photo that is already a tight face crop is shown to MTCNN so it is cropped like a video frame
(``faces.bordered``): enlargement, border in pixels after enlarging, MTCNN's smallest face, border fill. FER2013's
small crops cut through the face, so a reflected border completes it; SFEW's larger crops would gain a mirrored
second face that way, so they get a black one. The in-the-wild faces (``face_data.load_wild``, 144x144 after
loading) are cut like FER2013's, so they get a reflected border too."""
FACE_INPUT_SIZE = 48
"""Face-model input: FER2013's 48x48 greyscale; MTCNN crops are converted to exactly this."""
FACE_DISPLAY_SIZE = 160
"""Colour crops kept for display (Grad-CAM overlays)."""

# --- limits ----------------------------------------------------------------------------------
MAX_FILE_MB = 200.0
MAX_DURATION_S = 20 * 60.0
MAX_IMAGE_PIXELS = 50_000_000

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".flv", ".3gp", ".3g2", ".wmv",
                              ".asf", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts", ".vob", ".ogv"})
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".aac", ".amr", ".wma", ".aif",
                              ".aiff", ".au", ".caf", ".ac3", ".mka", ".weba"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
"""Extensions are only used to pick media files out of a folder; a file given by name is read by its
content (``media.probe``), whatever its extension."""
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | AUDIO_EXTENSIONS | IMAGE_EXTENSIONS
