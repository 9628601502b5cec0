"""ESPnet's frame pipeline, one owner for every path (offline, chunked, streamed, blocked long-form,
ONNX): how samples become feature frames (:mod:`.framing`: the STFT's frame arithmetic, fed
incrementally, and the greedy-CTC carry of a stream; NumPy only, so that the ONNX runtime uses it
too), how feature frames become encoder frames (:mod:`.geometry`: a subsampling's stride,
receptive field and look-ahead, output frames for N input frames and the reverse; plain Python) and
the input layers themselves (:mod:`.input_layer`: ESPnet's subsampling or linear layers, embedded
with positions from any offset), and the feature normalisation between them (:mod:`.normalize`:
ESPnet's global and utterance MVN in memory linear in the length). Imports nothing else from this package; importing it, or
:mod:`.geometry` and :mod:`.framing`, imports neither torch nor ESPnet."""
