# Which runner executes the recipe's jobs (statistics, training, decoding):
#   local  this machine, jobs in parallel (utils/run.pl)
#   slurm  a Slurm cluster through sbatch (utils/slurm.pl); site options (partition, account...) go
#          in conf/slurm.conf, one sbatch option per line. Multi-node training (--num_nodes N) needs it.
# run.pl and slurm.pl are links to the Python runners utils/run.py and utils/slurm.py: ESPnet's launcher
# (multi-GPU training) knows a runner by these Kaldi names.
# This file is the template's; each recipe's cmd.sh (like db.sh and conf/slurm.conf) is a link to it, so
# a site's setting here holds for every recipe. Choose here or per run: cmd_backend=slurm ./run.sh ...
cmd_backend=${cmd_backend:-local}

case "${cmd_backend}" in
    local)
        export train_cmd="utils/run.pl"
        export cuda_cmd="utils/run.pl"
        export decode_cmd="utils/run.pl" ;;
    slurm)
        export train_cmd="utils/slurm.pl"
        export cuda_cmd="utils/slurm.pl"
        export decode_cmd="utils/slurm.pl" ;;
    *)
        echo "cmd.sh: cmd_backend must be local or slurm, got '${cmd_backend}'" >&2
        return 1 ;;
esac
