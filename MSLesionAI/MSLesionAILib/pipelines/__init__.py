"""The three pipelines (wm, cortical, rim): inputs + bundle + options → `LesionResult`."""
