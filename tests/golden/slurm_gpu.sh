#!/bin/bash
#SBATCH --job-name=md-100-100-400K
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --partition=gpu
#SBATCH --account=proj42
#SBATCH --gres=gpu:1
#SBATCH --output=/scratch/study/launcher_2026/%x-%j.out
#SBATCH --error=/scratch/study/launcher_2026/%x-%j.err
# argyro job (Slurm), rendered by ArgyroQueueAdapter
set -eo pipefail
cd /scratch/study/launcher_2026
echo "${SLURM_JOB_ID:-}" > .argyro_job_id
module load cuda/12.4
module load apptainer
export ARGYRO_DB_PASSWORD_FILE=/home/u/.argyro/pw
export OMP_NUM_THREADS=8
apptainer exec --nv --bind /scratch,/apps /images/argyro.sif argyro rlaunch -l /site/lp.yaml -w /site/fw.yaml singleshot
