# Where the corpora are, for every recipe: each recipe's db.sh is a link to this file (ESPnet's one
# db.sh likewise names the corpora of all its recipes). Empty: the recipe's local/data.sh downloads the
# corpus into downloads/. A value set in the environment wins (AN4=/data/an4 ./run.sh).
AN4=${AN4:-}
LIBRISPEECH=${LIBRISPEECH:-}
FSDD=${FSDD:-}                      # the Free Spoken Digit Dataset: the folder that holds recordings/
SPEECHCOMMANDS=${SPEECHCOMMANDS:-}  # Google Speech Commands v0.02: the extracted training archive (one folder per word)
SLURP=${SLURP:-}                    # SLURP: the folder that holds dataset/slurp/*.jsonl and the audio folders
