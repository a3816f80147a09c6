"""A confidence per face: how familiar each face is to the face model sets how sure it may be.

    python -m emotion_core train face-familiarity --data ../shared/data --out runs/faces --weights weights

Why (issue #29, item 3). One temperature (0.88, fitted on the selection faces) calibrates FER2013 PublicTest
(ECE 0.030) and the held-aside SFEW Train films (0.085) but not SFEW Val (0.122): faces from films the model
never saw are harder than the 179 held-aside ones, and one number cannot know which face is which. The voice
solved the same problem with ``familiarity.Familiarity``; the face model uses the same module on its own
penultimate features (the 1280 pooled channels, averaged over the face and its mirror image, as the app
reads faces):

- the **faces it knows**: a principal-component model (16 components) of 6,000 FER2013 training faces
  (seeded, stratified by nothing: a plain random subsample of the faces it trained on);
- per face the two signals (``inside``, ``outside``), the map ``u = sigmoid(w . s + b)`` and the temperature
  ``T = t_familiar ** (1 - u) * t_unfamiliar ** u``;
- the map's four numbers are fitted on the selection faces (FER2013 PublicTest by its FER+ majority label and
  the held-aside SFEW Train films), minimising the mean over the two sets of their negative log-likelihood:
  the objective the single temperature minimises, of which it is the special case ``w = 0``.

The rule (written before anything here was measured; only selection faces decide). Five folds of each
selection set (PublicTest: a seeded random split; the films: whole films, seeded), and for each fold both the
per-face map and the single temperature are fitted on the other four folds of both sets and score that fold.
On the pooled out-of-fold probabilities the per-face temperature ships if (1) its mean negative
log-likelihood over the two sets is lower than the single temperature's, (2) its ECE on the films is lower,
and (3) its ECE on each selection set is at most 0.10. Then it is fitted on all selection faces and written
into the face checkpoint (the weights are unchanged, so accuracy is too). FER2013 PrivateTest (by its label
and by FER+ majority) and SFEW Val are scored once, with the single temperature beside it, and choose
nothing. Results: ``reports/face_familiarity.json``.
"""
