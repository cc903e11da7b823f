"""``autoform eval``: the pipeline measured on benchmarks whose reference Lean statements are public, with Lean
as the judge of every figure (statements elaborated, equivalence to the reference, proofs).

- :mod:`autoform.evaluation.bench`: reading benchmark files (JSON Lines, field names of the usual benchmarks);
- :mod:`autoform.evaluation.equivalence`: the equivalence checks Lean decides;
- :mod:`autoform.evaluation.runner`: problems stored as books of exercise units and run through the job;
- :mod:`autoform.evaluation.report`: figures, Wilson intervals, the JSON and HTML report, comparisons.
"""
