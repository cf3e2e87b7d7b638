"""The shared vocabulary: tissue label values, lesion families, types, locations and classes.

The phantom's truth, the white-matter network's tissue output and the lesion-location rules
all use these values; change them here or nowhere.
"""

from __future__ import annotations

from enum import IntEnum


class Tissue(IntEnum):
    """Values of a tissue labelmap (``truth/tissue.nii.gz``, ``wm_tissue.nii.gz``)."""

    BACKGROUND = 0
    CSF = 1                # extra-ventricular cerebrospinal fluid
    VENTRICLES = 2
    CORTICAL_GM = 3
    DEEP_GM = 4            # thalamus, basal ganglia
    WHITE_MATTER = 5       # supratentorial white matter
    INFRATENTORIAL = 6     # brainstem and cerebellum


TISSUE_NAMES = {
    Tissue.CSF: "cerebrospinal fluid",
    Tissue.VENTRICLES: "ventricles",
    Tissue.CORTICAL_GM: "cortical grey matter",
    Tissue.DEEP_GM: "deep grey matter",
    Tissue.WHITE_MATTER: "white matter",
    Tissue.INFRATENTORIAL: "infratentorial (brainstem and cerebellum)",
}

TISSUE_COLORS = {
    Tissue.CSF: (0.34, 0.63, 0.85),
    Tissue.VENTRICLES: (0.16, 0.35, 0.80),
    Tissue.CORTICAL_GM: (0.56, 0.56, 0.56),
    Tissue.DEEP_GM: (0.75, 0.55, 0.35),
    Tissue.WHITE_MATTER: (0.94, 0.92, 0.85),
    Tissue.INFRATENTORIAL: (0.62, 0.45, 0.70),
}

# White-matter lesion locations (McDonald-style), the same words everywhere.
PERIVENTRICULAR = "periventricular"
JUXTACORTICAL = "juxtacortical"
INFRATENTORIAL = "infratentorial"
DEEP_WHITE_MATTER = "deep"
WM_LOCATIONS = (PERIVENTRICULAR, JUXTACORTICAL, INFRATENTORIAL, DEEP_WHITE_MATTER)

# Cortical lesion types (truth) and CLAIMS's two predicted classes.
LEUKOCORTICAL = "leukocortical"
INTRACORTICAL = "intracortical"
SUBPIAL = "subpial"
CORTICAL_TYPES = (LEUKOCORTICAL, INTRACORTICAL, SUBPIAL)
INTRACORTICAL_SUBPIAL = "intracortical_subpial"
CORTICAL_CLASSES = (LEUKOCORTICAL, INTRACORTICAL_SUBPIAL)
# CLAIMS's minimum cortical lesion volumes (µL): the pipeline's choices and the evaluation's.
CLAIMS_MIN_VOLUMES_UL = (1.0, 3.0, 6.0, 9.0, 15.0)
# The cortical table's column flagging (1) a lesion that touches a white-matter lesion: listed,
# in the "white-matter lesion" segment, not counted as cortical; and how it is counted instead.
OVERLAPS_WM_LESION = "overlaps_wm_lesion"
OVERLAPS_WM_LESION_TITLE = "touching a WM lesion (not counted)"

# Lesion families in the phantom's truth table.
WM_FAMILY = "wm"
CORTICAL_FAMILY = "cortical"

# Display names and colours of lesion segments.
WM_LESION_SEGMENT = ("white-matter lesion", (1.0, 0.85, 0.0))
CORTICAL_SEGMENTS = {LEUKOCORTICAL: ("leukocortical lesion", (0.95, 0.35, 0.1)),
                     INTRACORTICAL_SUBPIAL: ("intracortical/subpial lesion", (0.2, 0.85, 0.3))}
# Segment names are ASCII: they go into NRRD headers. In prose: rim+ / rim−.
RIM_SEGMENTS = {1: ("rim+ lesion", (0.9, 0.1, 0.1)), 0: ("rim- lesion", (0.2, 0.6, 1.0))}

# A patient with at least this many paramagnetic rim lesions is flagged chronic active.
CHRONIC_ACTIVE_MIN_PRL = 4
# A rim result of one lesion (`mslesionai rim --point`): no patient-level count or flag.
POINT_RESULT_NOTE = "one lesion classified at a point: not a patient PRL count"

# How paramagnetic sources (veins, iron rims) appear on a phase image: the sign convention
# differs between scanners and reconstructions. The phantom's, and the default, comes first.
PARAMAGNETIC_PHASE = ("positive", "negative")
