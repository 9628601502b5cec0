"""Building blocks with no knowledge of ESPnet's tasks: the SummaryMixing cell
(:mod:`.summary_mixing`) and padding-safe forwards of ESPnet's time-convolution blocks
(:mod:`.masked`). Imports nothing else from this package."""
