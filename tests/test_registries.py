"""Every family's allowed names in the config agree with its registry (a member added to one and not the
other would either be refused by the config or fail only when a run reaches it)."""

from __future__ import annotations

from typing import Annotated, get_args, get_origin


def _union_tags(union: object, tag: str) -> set[str]:
    """The discriminator values of a tagged union of configs (``Annotated[A | B, Field(...)]``)."""
    members = get_args(get_args(union)[0]) if get_origin(union) is Annotated else get_args(union)
    return {value for member in members for value in get_args(member.model_fields[tag].annotation)}


def test_detectors():
    from thresher.reweighting.detect.registry import DETECTORS, DetectorName

    assert set(get_args(DetectorName)) == set(DETECTORS)


def test_selectors():
    from thresher.reweighting.select.registry import SELECTORS, Method

    assert set(get_args(Method)) == set(SELECTORS)


def test_llm_backends():
    from thresher.labeling.llm.config import LLMConfig
    from thresher.labeling.llm.factory import BACKENDS, CHUNKED

    assert _union_tags(LLMConfig, "backend") == set(BACKENDS) and CHUNKED <= set(BACKENDS)


def test_label_models():
    from thresher.labeling.config import DenoiseConfig
    from thresher.labeling.label_models import LABEL_MODELS

    assert set(get_args(DenoiseConfig.model_fields["model"].annotation)) == set(LABEL_MODELS) | {"auto"}


def test_formats():
    from thresher.storage.formats import EXTENSIONS, READERS, Format

    assert set(get_args(Format)) == set(READERS) and set(EXTENSIONS.values()) <= set(READERS)
