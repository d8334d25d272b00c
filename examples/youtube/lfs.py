"""Python labeling functions for the YouTube spam example, written as plain Snorkel LFs."""

import re

from snorkel.labeling import labeling_function
from snorkel.preprocess import preprocessor

ABSTAIN, HAM, SPAM = -1, 0, 1


@preprocessor(memoize=True)
def clean_text(x):
    """Strip HTML line breaks and the byte-order marks the UCI files carry."""
    x.clean = re.sub(r"<br\s*/?>", " ", x.text).replace("\ufeff", "").strip()
    return x


@labeling_function(pre=[clean_text])
def short_comment(x):
    """Ham comments are often short, such as 'cool video!'."""
    return HAM if len(x.clean.split()) < 5 else ABSTAIN


@labeling_function(pre=[clean_text])
def shouting(x):
    """Long comments written mostly in capitals are usually advertising."""
    letters = [c for c in x.clean if c.isalpha()]
    if len(letters) >= 20 and sum(c.isupper() for c in letters) / len(letters) > 0.7:
        return SPAM
    return ABSTAIN
