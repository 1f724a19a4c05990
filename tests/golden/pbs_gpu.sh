#!/bin/bash
#PBS -N md-100-100-400K
#PBS -l select=1:ncpus=8:mpiprocs=1:ngpus=1
#PBS -l walltime=24:00:00
#PBS -q gpu
#PBS -A proj42
#PBS -o /scratch/study/launcher_2026/md-100-100-400K.out
#PBS -e /scratch/study/launcher_2026/md-100-100-400K.err
# argyro job (PBS), rendered by ArgyroQueueAdapter
set -eo pipefail
cd /scratch/study/launcher_2026
echo "${PBS_JOBID:-}" > .argyro_job_id
module load cuda/12.4
module load apptainer
export ARGYRO_DB_PASSWORD_FILE=/home/u/.argyro/pw
export OMP_NUM_THREADS=8
apptainer exec --nv --bind /scratch,/apps /images/argyro.sif argyro rlaunch -l /site/lp.yaml -w /site/fw.yaml singleshot
