"""Analysis of result tables: the summary (:mod:`.summary`), ONE claim checker for every kind
of claim (:mod:`.checker`, with the experiment files' claim forms in :mod:`.claims` and the
evaluators in :mod:`.evaluators`), their outcomes (:mod:`.outcomes`) and a search's analysis
(:mod:`.search`)."""
