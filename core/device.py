"""Where torch work runs: ``device: auto | cpu | cuda | cuda:N`` in every stage that uses torch.

``auto`` takes the first GPU when torch sees one, else the CPU. A GPU asked for by name but not
there is an error, not a silent CPU run: a job sized for a GPU would crawl on the CPU.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

from pydantic import StringConstraints

if TYPE_CHECKING:
    import torch

DEVICE_PATTERN = r"^(auto|cpu|cuda(:\d+)?)$"
DeviceName = Annotated[str, StringConstraints(pattern=DEVICE_PATTERN)]


def resolve_device(name: str) -> torch.device:
    """The torch device for ``name`` (see the module docstring)."""
    import torch

    if not re.match(DEVICE_PATTERN, name):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'. Got {name!r} instead.")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} was asked for, but torch sees no GPU "
                             f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}); use device: auto or cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} was asked for, but torch sees {torch.cuda.device_count()} GPU(s).")
    return device


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the caller's number.

    One thread for work made of many tiny ops (Snorkel's LabelModel fit): with more, each op waits at
    a thread barrier, and on a machine whose cores are busy with other work every wait costs a
    scheduler slice (``benchmarks/label_model_threads.py``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
