"""Face model soups: average the weights of face models fine-tuned from one start (issue #29).

    python -m emotion_core train face-soup --data ../shared/data --out runs/faces --tag soups \\
        --ingredients runs/faces/fer2013-start runs/faces/ferplus-majority runs/faces/ferplus-votes \\
        runs/faces/ferplus-votes-wild

Why: the face model must hold up on faces from elsewhere (posed lab photos, talking video) that it may never
see while it is built. Models fine-tuned from the same start lie in one basin of the loss, and the average
of their weights is often better than each of them, on shifted data most of all (Wortsman et al. 2022,
"Model soups", ICML; Wortsman et al. 2022, "Robust fine-tuning of zero-shot models", CVPR); averages are
also better calibrated. The soup is one network: the app runs it at the cost of one model, unlike an
ensemble.

Ingredients: the three FER+ candidates of ``face_wild`` (``ferplus-majority``, ``ferplus-votes``,
``ferplus-votes-wild``, one epoch each from the same model) and that start, the face model shipped before
FER+ (``b12a760:weights/face.pt``, trained on FER2013's own labels). All read the same aligned crops.

**The rule, committed before any soup was scored:**

1. Soups, each scored on the selection faces only (FER2013 PublicTest by its FER+ majority, the held-aside
   SFEW Train films, as in ``face_wild``):
   - ``uniform``: the mean of the three FER+ candidates;
   - ``greedy``: the ingredients in order of their mean selection accuracy, best first; each joins if the
     soup's mean selection accuracy does not fall (the greedy soup of the paper).
   BatchNorm running statistics are averaged with the weights; for each soup the variant with its statistics
   re-estimated on 4,096 training faces (``+bn``) is scored too.
2. Each soup's temperature is fitted as the candidates' were: on the two selection sets, counted equally.
3. A soup ships by the FER+ rule of ``face_wild``, against the model shipped now (``ferplus-majority``):
   it beats that model's mean selection accuracy, loses at most 1.0 point on the films, and has ECE <= 0.10
   on each selection set; among those that qualify, the best mean.
4. FER2013 PrivateTest (both labellings) and SFEW Val are scored once per soup and choose nothing.
"""
