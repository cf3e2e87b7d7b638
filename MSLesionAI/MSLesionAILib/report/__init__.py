"""The per-patient report: one self-contained HTML page (optionally a PDF) from result folders.

`collect` reads the folders the pipelines wrote, `groups` counts lesions by location, class or
rim status, `figures` draws the lesion lightboxes, `html` writes the page, `build` puts these
together (`write_report`), `browser` prints to PDF or takes a screenshot with headless Chromium,
and `scene` reports Slicer result nodes as edited (`write_scene_report`, the Report button).
"""
