"""MSLesionAILib: the library behind the MSLesionAI Slicer extension and the `mslesionai` command.

Importable with no Slicer at all. Every way in (Slicer panel, command line, batch) ends in the
same pipeline functions of this package, and every way out starts from the same result objects.
"""

__version__ = "0.1.0"
