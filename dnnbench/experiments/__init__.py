"""One module per experiment: builds its arms (specs), runs them as resumable units, returns DataFrames."""
