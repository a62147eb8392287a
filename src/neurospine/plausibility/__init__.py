"""Input plausibility: is this image the body region, plane and modality a tool's model was trained for?

Each tool has one module (``spine``, ``cord``, ``slice2d``, ``brainage``) that turns evidence the image
carries (header geometry, intensity statistics, and above all the model's own output statistics) into a
:class:`~neurospine.plausibility.verdict.Verdict`: ``ok`` (run), ``flag`` (run, and say why the result may
not mean what it seems) or ``refuse`` (exit 2 with one line naming the file, what it looks like and what the
tool expects; ``--force`` runs it anyway, flagged). The rules are written in physical units (head and body
sizes in mm, Hounsfield units, vertebral spacing) with wide margins; ``benchmarks/plausibility.py``
measures them on a wrong-kind corpus and on every shared real scan of the kinds each tool supports.
"""

from neurospine.plausibility.verdict import Verdict, enforce

__all__ = ["Verdict", "enforce"]
