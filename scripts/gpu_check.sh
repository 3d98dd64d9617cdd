#!/usr/bin/env bash
# The GPU check: one command on a machine with a CUDA GPU and no network (docs/benchmarks.md,
# "On a GPU").
#
#   bash scripts/gpu_check.sh prepare   # where pip reaches PyPI: the wheels that the GPU
#                                       # machine lacks, into .gpu-wheels/ (git-ignored)
#   bash scripts/gpu_check.sh           # on the GPU machine, in a copy of the repository with
#                                       # .gpu-wheels/ carried along: install them offline, run
#                                       # the parts below, write the results to $OUT
#   bash scripts/gpu_check.sh extras    # after the check, with device time left: does compile
#                                       # pay back, and do runs packed on one GPU raise throughput
#   bash scripts/gpu_check.sh plan      # print the parts and their time caps; run nothing
#
# The GPU machine's python3 (3.12) holds torch, torchvision, timm, numpy, pandas, scikit-learn,
# scipy, opencv, tifffile, matplotlib, pytest and hypothesis, not the rest of the project's
# needs: `prepare` downloads those (pure-Python or cp312 manylinux wheels, at constraints.txt's
# versions), and the check installs them with pip --no-index into $GPU_CHECK_SITE. MLflow is not
# carried: the check runs with tracking.enabled=false, and where `import mlflow` fails it puts
# an empty stand-in on the path, since ssformer_repro.tracking.runs imports mlflow at start-up.
#
# Parts, in order, each with a time cap, all within GPU_CHECK_SECONDS (470 s) of the start; a
# part that fails or runs out of time is recorded and the check goes on to the next:
#   install         the wheels, offline; the project's imports
#   gpu-tests       pytest -m gpu tests/gpu (CUDA training, resume, channels-last + fused AdamW,
#                   evaluation bf16 vs fp32, out of memory, torchrun NCCL, then compile)
#   kedro-run       the demo's synth_kvasir.mit_b0.sed.seed42 run, 2 epochs at 352 px on CUDA,
#                   `kedro run --env=demo --pipelines=data_processing,training` (data, training, test
#                   scores; the reporting pipeline compares heads, so it needs two runs or more),
#                   in a scratch copy of the project
#   benchmark-*     python -m ssformer_repro.benchmark at 352 px, batch 16 (halved where memory
#                   runs out), the three heads, both loops, compute and end to end: mit_b0 with
#                   the data section at 8 and 16 workers, mit_b2, then mit_b5 with the grid
#                   estimate; one process per backbone, so that a part cut short keeps the others
#
# The extras, within GPU_CHECK_EXTRAS_SECONDS (300 s): the install again (a machine may be fresh),
#   compile         the benchmark's attention section (SDPA, torch.compile payback), MiT-B0 and B2
#   packing         three demo runs at 352 px on an 800-image synth_kvasir, trained by `kedro
#                   run --namespaces=<run>` one after another, then as three processes at once
# writing extras-summary.txt, extras.log, attention.md and extras-details.tar.gz to $OUT.
#
# $OUT (default ./gpu-check-out) receives from the check at most 8 files: summary.txt,
# gpu-tests.log, kedro-run.log, benchmark.log, benchmark.md, benchmark.json and details.tar.gz
# (the install log, the machine's description, pytest's JUnit XML, the Kedro run's tables and
# histories, each benchmark part's own report). The exit status is 0 when every part passed.
set -euo pipefail

REPO=${GPU_CHECK_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
WHEELS=${GPU_CHECK_WHEELS:-$REPO/.gpu-wheels}
PYTHON=${PYTHON:-python3}
SITE=${GPU_CHECK_SITE:-/tmp/gpu-check-site}
BUDGET=${GPU_CHECK_SECONDS:-470}
EXTRAS_BUDGET=${GPU_CHECK_EXTRAS_SECONDS:-300}
MAX_WHEEL_MIB=50

# Distributions the GPU machine lacks, by their names in constraints.txt. Not carried: mlflow
# (tracking off, see above), dvc (not used by the check), kedro-telemetry and kedro-viz (plugins
# a `kedro run` does without), cookiecutter and GitPython (kedro imports them for `kedro new`).
CARRIED=(
    kedro kedro-datasets omegaconf antlr4-python3-runtime dynaconf more-itertools parse tomli_w
    pydantic pydantic_core annotated-types typing-inspection typing_extensions
    albumentations albucore simsimd stringzilla segmentation_models_pytorch pysodmetrics monai
)
# Every import the check needs beyond the machine's own packages.
IMPORTS="kedro, kedro_datasets, omegaconf, dynaconf, pydantic, albumentations, \
segmentation_models_pytorch, py_sod_metrics, monai, ssformer_repro.pipeline_registry, \
ssformer_repro.training.run, ssformer_repro.benchmark.runner"

# name  cap (s)  what
PARTS=(
    "install 60 the carried wheels, offline"
    "gpu-tests 200 pytest -m gpu tests/gpu"
    "kedro-run 120 kedro run: synth_kvasir.mit_b0.sed, 2 epochs, 352 px, CUDA"
    "benchmark-mit_b0 100 benchmark train (3 heads) + data (8, 16 workers), mit_b0"
    "benchmark-mit_b2 90 benchmark train (3 heads), mit_b2"
    "benchmark-mit_b5 150 benchmark train (3 heads) + grid estimate, mit_b5"
)
# The extras' parts, within GPU_CHECK_EXTRAS_SECONDS (300 s).
EXTRA_PARTS=(
    "compile 130 benchmark attention: manual vs SDPA, compile payback, mit_b0 and mit_b2"
    "packing 160 three runs (B0 sed, B0 pld, B1 sed), one after another, then all at once"
)
PACKED_RUNS=(synth_kvasir.mit_b0.sed.seed42 synth_kvasir.mit_b0.pld.seed42 synth_kvasir.mit_b1.sed.seed42)
KEDRO_PARAMS=(
    "reproduce.only=synth_kvasir.mit_b0.sed.seed42"
    "reproduce.datasets=[synth_kvasir]"
    "data_processing.datasets=[synth_kvasir]"
    "augmentation.image_size=352"
    "data_processing.cache_size=352"
    "training.epochs=2"
    # the study's head width, not the demo's narrow CPU heads (conf/demo: embed_dim 64)
    "model.head_options.sed.embed_dim=null"
    "training.device=cuda"
    "training.num_workers=4"
    "evaluation.device=cuda"
    "tracking.enabled=false"
)
# The packing part: synth_kvasir grown to Kvasir-SEG's 800 / 100 / 100 split, 4 epochs per run;
# the grid's backbones and heads (lists, which --params cannot hold: it splits at commas) are
# PACKED_GRID, written into the scratch copy's conf/demo.
PACKED_GRID='{"backbones": ["mit_b0", "mit_b1"], "heads": ["pld", "sed"]}'

PACKING_PARAMS=(
    "reproduce.datasets=[synth_kvasir]"
    "data_processing.datasets=[synth_kvasir]"
    "datasets.synth_kvasir.synthetic.n_images=1000"
    "datasets.synth_kvasir.split.test_fraction=0.1"
    "augmentation.image_size=352"
    "data_processing.cache_size=352"
    "training.epochs=4"
    "training.batch_size=16"
    # the study's head width, not the demo's narrow CPU heads (conf/demo: embed_dim 64)
    "model.head_options.pld.embed_dim=null"
    "model.head_options.sed.embed_dim=null"
    "training.device=cuda"
    "training.num_workers=4"
    "evaluation.device=cuda"
    "tracking.enabled=false"
)
# shellcheck disable=SC2054  # the commas are in one argument, the heads' list
BENCHMARK=(
    -m ssformer_repro.benchmark --device cuda --size 352 --heads pld,pld_linear,sed
    --batch-size 16 --steps 8 --warmup 2 --repeats 2
)

export KEDRO_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1
export PYTHONUNBUFFERED=1

pinned() {
    # name==version of each carried distribution, from constraints.txt (names compared as pip
    # does: case-insensitive, with -, _ and . alike).
    "${PREPARE_PYTHON}" - "$REPO/constraints.txt" "${CARRIED[@]}" <<'EOF'
import re
import sys

def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()

pins = {}
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if "==" in line:
        name, version = line.split("==", 1)
        pins[norm(name)] = f"{name}=={version}"
missing = [name for name in sys.argv[2:] if norm(name) not in pins]
if missing:
    sys.exit(f"constraints.txt pins no version of {missing}")
print("\n".join(pins[norm(name)] for name in sys.argv[2:]))
EOF
}

prepare() {
    PREPARE_PYTHON=${PREPARE_PYTHON:-$([ -x "$REPO/.venv/bin/python" ] && echo "$REPO/.venv/bin/python" || echo python3)}
    local platforms=() n
    for n in 28 27 17; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
    platforms+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
    local requirements
    requirements=$(pinned)
    rm -rf "$WHEELS" && mkdir -p "$WHEELS"
    local requirement
    for requirement in $requirements; do
        if "$PREPARE_PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
            --python-version 3.12 --implementation cp "${platforms[@]}" \
            --dest "$WHEELS" "$requirement" 2>"$WHEELS/.pip.err"; then
            continue
        fi
        # No wheel on PyPI (antlr4-python3-runtime 4.9.3 is a source archive): build one here,
        # which works for a pure-Python package only.
        "$PREPARE_PYTHON" -m pip wheel --quiet --no-deps --no-binary=:all: \
            --wheel-dir "$WHEELS" "$requirement"
    done
    rm -f "$WHEELS/.pip.err"
    "$PREPARE_PYTHON" - "$WHEELS" "$MAX_WHEEL_MIB" <<'EOF'
import hashlib
import sys
from pathlib import Path

folder, limit = Path(sys.argv[1]), float(sys.argv[2])
wheels = sorted(folder.glob("*.whl"))
bad = [w.name for w in wheels if not (w.name.endswith("-none-any.whl") or "-cp312-" in w.name)]
if bad:
    sys.exit(f"not pure-Python or cp312 wheels: {bad}")
lines = [f"{w.name}\t{w.stat().st_size}\t{hashlib.sha256(w.read_bytes()).hexdigest()}" for w in wheels]
(folder / "manifest.tsv").write_text("wheel\tbytes\tsha256\n" + "\n".join(lines) + "\n")
total = sum(w.stat().st_size for w in wheels) / 2**20
for w in wheels:
    print(f"{w.stat().st_size / 2**20:8.2f} MiB  {w.name}")
print(f"{total:8.2f} MiB in {len(wheels)} wheels, in {folder} (manifest.tsv lists their sha256)")
if total > limit:
    sys.exit(f"the wheels take {total:.1f} MiB, more than {limit:.0f} MiB")
EOF
}

plan() {
    echo "GPU check: at most ${BUDGET} s in all; each part gets its cap or what is left."
    local part
    for part in "${PARTS[@]}"; do
        read -r name cap what <<<"$part"
        printf '  %-18s %4s s  %s\n' "$name" "$cap" "$what"
    done
    echo "extras: at most ${EXTRAS_BUDGET} s in all."
    for part in "${EXTRA_PARTS[@]}"; do
        read -r name cap what <<<"$part"
        printf '  %-18s %4s s  %s\n' "$name" "$cap" "$what"
    done
    echo "kedro run --env=demo --pipelines=data_processing,training --params=$(IFS=,; echo "${KEDRO_PARAMS[*]}")"
    echo "python ${BENCHMARK[*]} --backbones <mit_b0|mit_b2|mit_b5> ..."
    echo "packing: reproduce ${PACKED_GRID}; runs ${PACKED_RUNS[*]}"
    echo "packing: kedro run --env=demo --pipelines=training --namespaces=<run> --params=$(IFS=,; echo "${PACKING_PARAMS[*]}")"
    local wheels
    wheels=0
    [ -d "$WHEELS" ] && wheels=$(find "$WHEELS" -maxdepth 1 -name '*.whl' | wc -l)
    echo "wheels: $WHEELS ($wheels found); results: ${OUT:-./gpu-check-out}"
}

# --- the check --------------------------------------------------------------------------------

cap_of() {
    local part
    for part in "${PARTS[@]}" "${EXTRA_PARTS[@]}"; do
        read -r name cap _ <<<"$part"
        [ "$name" = "$1" ] && echo "$cap" && return
    done
    echo 60
}

run_part() {
    # run_part NAME LOG COMMAND...: COMMAND under the part's cap (or the time left), its output
    # appended to LOG; its exit status and seconds go to the summary. Never fails itself.
    local name=$1 log=$2
    shift 2
    local left=$((BUDGET - SECONDS)) cap
    cap=$(cap_of "$name")
    [ "$left" -lt "$cap" ] && cap=$left
    if [ "$cap" -lt 15 ]; then
        printf '%-18s %-22s %5s s  (cap %s s)\n' "$name" "skipped: no time left" 0 "$cap" >>"$SUMMARY"
        FAILED=$((FAILED + 1))
        return 0
    fi
    echo "== $name (up to $cap s): $*" | tee -a "$log"
    local started=$SECONDS rc=0
    # timeout runs a program, not a shell function: this script again, with the part's verb.
    timeout --kill-after=10 "$cap" bash "${BASH_SOURCE[0]}" "$@" >>"$log" 2>&1 || rc=$?
    local took=$((SECONDS - started)) status="ok"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        status="timed out ($rc)"
    elif [ "$rc" -ne 0 ]; then
        status="failed ($rc)"
    fi
    [ "$rc" -ne 0 ] && FAILED=$((FAILED + 1))
    printf '%-18s %-22s %5s s  (cap %s s)\n' "$name" "$status" "$took" "$cap" | tee -a "$SUMMARY"
    return 0
}

install_wheels() {
    ls "$WHEELS"/*.whl >/dev/null || { echo "no wheels in $WHEELS: run 'prepare' first"; return 1; }
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$WHEELS"/*.whl
    if ! "$PYTHON" -c "import mlflow" 2>/dev/null; then
        mkdir -p "$STUBS/mlflow"
        cat >"$STUBS/mlflow/__init__.py" <<'EOF'
"""Stand-in for MLflow in the GPU check, which runs with tracking.enabled=false: importable,
unusable (scripts/gpu_check.sh)."""


def __getattr__(name):
    raise RuntimeError(f"mlflow.{name}: MLflow is not installed here; set tracking.enabled=false")
EOF
        echo "mlflow is not installed: the check uses the stand-in $STUBS/mlflow"
    fi
    "$PYTHON" -c "import $IMPORTS; print('imports: ok')"
    "$PYTHON" -m pip list 2>/dev/null >"$DETAILS/pip-list.txt" || true
}

scratch_project() {
    # A copy of the project to run `kedro run --env=demo` in, its data/ empty.
    local project=$1
    rm -rf "$project" && mkdir -p "$project/conf/local" "$project/data"
    cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/src" "$project/"
    cp -r "$REPO/conf/base" "$REPO/conf/demo" "$project/conf/"
}

kedro_run() {
    local project=$WORK/project
    scratch_project "$project"
    (cd "$project" && "$PYTHON" -m kedro run --env=demo --pipelines=data_processing,training \
        "--params=$(IFS=,; echo "${KEDRO_PARAMS[*]}")") || return $?
    (cd "$project/data/demo" && find . -type f \( -name '*.csv' -o -name '*.json' -o -name '*.md' \
        -o -name '*.txt' \) -size -2M -print0 | tar --null -czf "$DETAILS/kedro-run-outputs.tar.gz" -T -)
    "$PYTHON" - "$project/data/demo/06_models" <<'EOF'
import math
import sys
from pathlib import Path

import pandas as pd

histories = sorted(Path(sys.argv[1]).rglob("history.csv"))
assert histories, "the run wrote no history.csv"
for path in histories:
    history = pd.read_csv(path)
    assert history["epoch"].tolist() == [1, 2], path
    assert all(math.isfinite(v) for v in history["train_loss"]), path
    print(path.parent.name, history[["epoch", "train_loss", "val_mdice", "images_per_second"]]
          .to_string(index=False), sep="\n")
EOF
}

gpu_tests() {
    cd "$REPO"
    # Without a GPU every test is skipped and pytest passes: that is a failed check here.
    "$PYTHON" -c "import torch, sys; torch.cuda.is_available() or sys.exit('torch sees no GPU')"
    "$PYTHON" -m pytest -v -p no:cacheprovider -m gpu --junitxml="$DETAILS/gpu-tests.xml" \
        tests/gpu/test_cuda.py tests/gpu/test_nccl.py tests/gpu/test_compile.py
}

benchmark() {
    local name=$1
    shift
    cd "$REPO"  # the grid estimate reads this project's configuration
    "$PYTHON" "${BENCHMARK[@]}" --output "$WORK/$name" "$@"
}

packing() {
    # The same three runs trained one after another, then as three processes at once (the run
    # lock allows different runs at once): the wall times and each run's images/s.
    local project=$WORK/packing params run started
    params="--params=$(IFS=,; echo "${PACKING_PARAMS[*]}")"
    scratch_project "$project"
    cd "$project"
    "$PYTHON" - conf/demo/parameters_reproduce.yml "$PACKED_GRID" <<'EOF2' || return 1
import json
import sys
from pathlib import Path

import yaml

path = Path(sys.argv[1])
parameters = yaml.safe_load(path.read_text())
parameters["reproduce"].update(json.loads(sys.argv[2]))
path.write_text(yaml.safe_dump(parameters))
EOF2
    "$PYTHON" -m kedro run --env=demo --pipelines=data_processing "$params" >"$WORK/packing-data.log" 2>&1 \
        || { tail -40 "$WORK/packing-data.log"; return 1; }
    local mode
    for mode in sequential packed; do
        rm -rf data/demo/06_models data/demo/07_model_output
        started=$EPOCHREALTIME
        for run in "${PACKED_RUNS[@]}"; do
            if [ "$mode" = sequential ]; then
                train_one "$run" "$params" "$mode" || return 1
            else
                train_one "$run" "$params" "$mode" &
            fi
        done
        if [ "$mode" = packed ]; then
            for run in "${PACKED_RUNS[@]}"; do wait -n || return 1; done
        fi
        "$PYTHON" - "$mode" "$started" "$WORK/packing-seconds.txt" "${PACKED_RUNS[@]}" <<'EOF2'
import sys
import time
from pathlib import Path

import pandas as pd

mode, started, record, runs = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:]
seconds = time.time() - started
rates = []
for run in runs:
    history = pd.read_csv(Path("data/demo/06_models", run, "history.csv"))
    rate = history["images_per_second"].iloc[1:].mean()  # epoch 1 holds cuDNN's autotuning
    rates.append(rate)
    print(f"{mode:10s} {run:34s} {rate:8.1f} train images/s (epochs 2-{len(history)})")
print(f"{mode:10s} {'all three':34s} {sum(rates):8.1f} train images/s summed, {seconds:.1f} s wall")
with record.open("a") as file:
    file.write(f"{mode} {seconds}\n")
if mode == "packed":
    wall = dict(line.split() for line in record.read_text().splitlines())
    ratio = float(wall["packed"]) / float(wall["sequential"])
    print(f"packed / sequential wall time: {ratio:.2f} (below 1: packing raises throughput)")
EOF2
    done
}

train_one() {
    local run=$1 params=$2 mode=$3
    "$PYTHON" -m kedro run --env=demo --pipelines=training --namespaces="$run" "$params" \
        >"$WORK/packing-$mode-$run.log" 2>&1 || { tail -40 "$WORK/packing-$mode-$run.log"; return 1; }
}

collect_benchmarks() {
    "$PYTHON" - "$WORK" "$OUT" <<'EOF'
import json
import sys
from pathlib import Path

work, out = Path(sys.argv[1]), Path(sys.argv[2])
reports, texts = {}, []
for part in sorted(work.glob("benchmark-*")):
    if (part / "benchmark.json").is_file():
        reports[part.name] = json.loads((part / "benchmark.json").read_text())
        texts.append(f"<!-- {part.name} -->\n" + (part / "benchmark.md").read_text())
(out / "benchmark.json").write_text(json.dumps(reports, indent=2) + "\n")
(out / "benchmark.md").write_text("\n".join(texts) or "No benchmark part finished.\n")
EOF
}

start_check() {
    # The variables every part reads, the summary's head; $1 is the summary's name.
    OUT=${OUT:-$PWD/gpu-check-out}
    mkdir -p "$OUT"
    OUT=$(cd "$OUT" && pwd)
    WORK=$(mktemp -d /tmp/gpu-check.XXXXXX)
    DETAILS=$WORK/details
    STUBS=$WORK/stubs
    SUMMARY=$OUT/$1
    FAILED=0
    mkdir -p "$DETAILS" "$STUBS"
    cd "$REPO"
    export OUT WORK DETAILS STUBS SITE PYTHON
    export PYTHONPATH="$SITE:$REPO/src:$REPO:$STUBS${PYTHONPATH:+:$PYTHONPATH}"
    {
        echo "GPU check of $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'this tree'), $(date -u +%FT%TZ)"
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
            || echo "nvidia-smi: not found"
        "$PYTHON" -c "import sys, torch; print('python', sys.version.split()[0], '| torch', \
torch.__version__, '| CUDA', torch.version.cuda, '| GPU seen by torch:', torch.cuda.is_available())" \
            2>&1 || true
        echo
        printf '%-18s %-22s %7s\n' part status time
    } >"$SUMMARY"
}

finish_check() {
    # The closing lines of the summary; $1 is the details archive's name. Fails if a part did.
    local details=$1
    (cd "$WORK" && tar -czf "$OUT/$details" details) || true
    {
        echo
        echo "$FAILED part(s) failed; $SECONDS s in all (budget $BUDGET s)."
        echo "Logs and tables in $OUT: $(cd "$OUT" && echo *)"
    } >>"$SUMMARY"
    rm -rf "$WORK"
    cat "$SUMMARY"
    [ "$FAILED" -eq 0 ]
}

check() {
    start_check summary.txt
    { nvidia-smi 2>&1 || true; lscpu 2>&1 || true; free -g 2>&1 || true; } >"$DETAILS/machine.txt"

    run_part install "$DETAILS/install.log" _install
    run_part gpu-tests "$OUT/gpu-tests.log" _gpu_tests
    run_part kedro-run "$OUT/kedro-run.log" _kedro_run
    run_part benchmark-mit_b0 "$OUT/benchmark.log" _benchmark benchmark-mit_b0 \
        --backbones mit_b0 --sections train,data --workers 8,16 --no-estimate
    run_part benchmark-mit_b2 "$OUT/benchmark.log" _benchmark benchmark-mit_b2 \
        --backbones mit_b2 --sections train --no-estimate
    run_part benchmark-mit_b5 "$OUT/benchmark.log" _benchmark benchmark-mit_b5 \
        --backbones mit_b5 --sections train

    collect_benchmarks || echo "collecting the benchmark reports failed" >>"$SUMMARY"
    for part in "$WORK"/benchmark-*; do
        [ -d "$part" ] && cp -r "$part" "$DETAILS/"
    done
    finish_check details.tar.gz
}

extras() {
    # In a call of its own after the check (its wheels installed again: a machine may be fresh).
    BUDGET=$EXTRAS_BUDGET
    start_check extras-summary.txt
    run_part install "$DETAILS/install.log" _install
    run_part compile "$OUT/extras.log" _benchmark benchmark-attention --sections attention \
        --backbones mit_b0,mit_b2 --compile-steps 40 --no-estimate
    run_part packing "$OUT/extras.log" _packing
    for part in "$WORK"/benchmark-attention "$WORK"/packing-*.log; do
        [ -e "$part" ] && cp -r "$part" "$DETAILS/"
    done
    [ -f "$WORK/benchmark-attention/benchmark.md" ] \
        && cp "$WORK/benchmark-attention/benchmark.md" "$OUT/attention.md"
    finish_check extras-details.tar.gz
}

case "${1:-check}" in
    prepare) prepare ;;
    plan) plan ;;
    check) check ;;
    extras) extras ;;
    # The parts, as run_part starts them (under timeout, with check's variables exported).
    _install) install_wheels ;;
    _gpu_tests) gpu_tests ;;
    _kedro_run) kedro_run ;;
    _benchmark) shift && benchmark "$@" ;;
    _packing) packing ;;
    _pinned) PREPARE_PYTHON=${PREPARE_PYTHON:-python3} pinned ;;  # the carried pins (a test reads them)
    *) echo "usage: bash scripts/gpu_check.sh [prepare|plan|check|extras]" >&2 && exit 2 ;;
esac
