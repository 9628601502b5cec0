# Where the corpora are. Empty: the recipe's local/data.sh downloads the corpus into downloads/.
# A value set in the environment wins (AN4=/data/an4 ./run.sh).
AN4=${AN4:-}
LIBRISPEECH=${LIBRISPEECH:-}
