"""The six MER2024 emotion classes, in the challenge's order."""

CLASSES: tuple[str, ...] = ("neutral", "angry", "happy", "sad", "worried", "surprise")
CLASS_INDEX: dict[str, int] = {c: i for i, c in enumerate(CLASSES)}

# Labeled class counts of the MER2024 training set (train&val), used by the synthetic benchmark.
MER2024_TRAIN_COUNTS: dict[str, int] = {
    "neutral": 1248,
    "angry": 1208,
    "happy": 1038,
    "sad": 730,
    "worried": 616,
    "surprise": 190,
}
