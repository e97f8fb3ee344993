"""Smoke tests of whole grids (``python -m benchmark.run --grid G --smoke``): every kind of
cell rehearsed at the grid's true scale before a GPU-hour is spent.

:mod:`.kinds` groups cells into kinds; :mod:`.inputs` provides splits and weights, real or
stand-in (:mod:`.standin_data` with the raw layouts of :mod:`.rawformats`,
:mod:`.standin_weights`); :mod:`.cell` runs and measures one kind; :mod:`.cost` and
:mod:`.summary` print the per-kind table and the real grid's cost sheet; :mod:`.cli` ties
them together. Imports nothing at package level, so ``benchmark.run`` stays light.
"""
