"""Where a run is also logged as it trains, for people watching a days-long sweep: TensorBoard, Weights & Biases,
MLflow, several at once. spec.py names the run (picklable, so a Ray task can carry it), sinks.py opens it (each
library imported only there, when a tracker is asked for), check.py tells before training that a library is
missing, and one file per tracker speaks its library's API."""
