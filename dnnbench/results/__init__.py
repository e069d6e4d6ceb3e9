"""Result files: the CSV and metadata readers and writers (:mod:`.io`), the one result set and
its loaders (:mod:`.resultset`), and the run folder's lock and settings record
(:mod:`.runfolder`)."""
