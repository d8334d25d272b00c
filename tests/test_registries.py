"""Every family's allowed names in the config agree with its registry (a member added to one and not the
other would either be refused by the config or fail only when a run reaches it)."""

from __future__ import annotations

from typing import Annotated, get_args, get_origin


def _union_tags(union: object, tag: str) -> set[str]:
    """The discriminator values of a tagged union of configs (``Annotated[A | B, Field(...)]``)."""
    members = get_args(get_args(union)[0]) if get_origin(union) is Annotated else get_args(union)
    return {value for member in members for value in get_args(member.model_fields[tag].annotation)}


def test_detectors():
    """Names and capabilities live on the settings classes; the config's schema and validation follow them."""
    from thresher.reweighting.detect.registry import DETECTORS
    from thresher.reweighting.detect.stage import DetectConfig

    assert all(cls.name == name for name, cls in DETECTORS.items())
    schema = DetectConfig.model_json_schema()["properties"]["detectors"]["propertyNames"]["anyOf"][0]["enum"]
    assert schema == list(DETECTORS)
    streamed = {name for name, cls in DETECTORS.items() if cls.streams}
    assert streamed == {"confident_learning", "small_loss", "ensemble"}  # what needs only the probabilities
    for name in DETECTORS:
        others = {} if not DETECTORS[name].over_others else {"confident_learning": {}, "small_loss": {}}
        assert name in DetectConfig(detectors={**others, name: {}}).detectors


def test_selectors():
    from thresher.reweighting.select.registry import SELECTORS, Method

    from thresher.reweighting.select.stage import SelectConfig

    assert set(get_args(Method)) == set(SELECTORS)
    for name, cls in SELECTORS.items():  # its settings sit under its name, and its default features are its own
        assert cls.name == name and SelectConfig.model_fields[name].annotation is cls
    assert {n: cls.encoder for n, cls in SELECTORS.items()} == {"color_filter": "tfidf", "gio": "minilm-static",
                                                                 "random": "tfidf"}


def test_llm_backends():
    from thresher.labeling.llm.config import LLMConfig
    import importlib

    from thresher.labeling.llm.backend import Backend
    from thresher.labeling.llm.factory import BACKENDS

    assert _union_tags(LLMConfig, "backend") == set(BACKENDS)
    for name, cls in BACKENDS.items():  # each config names a Backend class that exists, imported only here
        module, _, code = cls.code.partition(":")
        assert issubclass(getattr(importlib.import_module(module), code), Backend), name
    assert [n for n, cls in BACKENDS.items() if cls.chunked] == ["embedded"]


def test_label_models():
    from thresher.labeling.config import DenoiseConfig
    from thresher.labeling.label_models import LABEL_MODELS

    assert all(cls.name == name for name, cls in LABEL_MODELS.items())
    allowed = DenoiseConfig.model_json_schema()["properties"]["model"]["anyOf"][0]["enum"]
    assert set(allowed) == set(LABEL_MODELS) | {"auto"}
    assert all(DenoiseConfig(model=name).plugin is None for name in allowed)


def test_formats():
    from thresher.storage.formats import EXTENSIONS, READERS, Format

    assert set(get_args(Format)) == set(READERS) and set(EXTENSIONS.values()) <= set(READERS)


def test_lf_kinds():
    """Each LF kind builds its own LFs (no isinstance chain); the union is made of LF_KINDS."""
    from thresher.labeling.config import LF_KINDS, LabelingConfig, LFSpec

    kinds = _union_tags(LabelingConfig.model_fields["lfs"].annotation.__args__[0], "kind")
    assert kinds == {get_args(cls.model_fields["kind"].annotation)[0] for cls in LF_KINDS}
    assert all(issubclass(cls, LFSpec) and "build" in vars(cls) for cls in LF_KINDS)
