"""The per-patient report: one self-contained HTML page (optionally a PDF) from result folders.

`collect` reads the folders the pipelines wrote, `figures` draws the lesion lightboxes,
`html` writes the page, `browser` prints it to PDF or a screenshot with headless Chromium.
"""
