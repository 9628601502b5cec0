"""The command layer: what every command shares, so that each command is only its own work.

- :mod:`.options`: one flag vocabulary (``--model``, ``--output``/``--output_dir``, durations in
  seconds), old spellings kept as aliases that warn;
- :mod:`.inputs`: one reader of audio lists (a path, or ``<key> <path>`` as in a wav.scp);
- :mod:`.outputs`: every output path checked before decoding starts, names that collide refused,
  files written under a temporary name then renamed;
- :mod:`.models`: the model loaded through one function that knows the model kinds, a kind the
  command cannot use refused in one line naming the command that can;
- :mod:`.loop`: one file at a time: report, go on, exit 1; the one "too short" rule; exit status 2
  for a command that cannot start;
- :mod:`.quiet`: no start-up noise from ESPnet's imports (nltk's download errors, notices).

Importing any of them imports neither torch nor ESPnet: the ONNX runtime's command uses them too.
"""
