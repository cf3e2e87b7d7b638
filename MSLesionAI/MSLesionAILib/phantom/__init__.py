"""The synthetic MS phantom: realistic multi-contrast cases with exact truth (docs/phantom.md).

`generate_case` draws a case from a seed; `write_case` writes its folder.
"""

from .case import (
           GENERATOR_VERSION,
           KIND_CONTRASTS,
           KIND_IMAGES,
           KINDS,
           MODES,
           PhantomCase,
           generate_case,
           write_case,
)

__all__ = ["GENERATOR_VERSION", "KIND_CONTRASTS", "KIND_IMAGES", "KINDS", "MODES", "PhantomCase",
           "generate_case", "write_case"]
