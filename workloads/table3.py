"""A Table-3-style comparison (seed 001): FPS and energy of VGG16 and ResNet19 on the default hardware.

Our side: synthetic-weight topologies (``atsnn.workloads.topologies``), 4 accelerators, T = 4, fixed T,
seeded synthetic CIFAR-size images. The paper's side: its Table 3 (SATA-Sim, 28 nm, 500 MHz, 4
accelerators, trained networks, the 10,000-image test set).

Plus the what-if study of seed 004's Spiking YOLOv3-tiny at 416x416 on the same hardware in the
analytic mode, T = 64..2048 (rates measured by a functional fixed-point run on synthetic images).
"""

from __future__ import annotations

from pathlib import Path

PAPER = {  # (network, dataset): (GPU FPS, GPU J, accelerator FPS, accelerator J) for the test set
    ("VGG16", "CIFAR10"): (215, 6814, 248, 537.6),
    ("VGG16", "CIFAR100"): (200, 7499, 228, 543.6),
    ("ResNet19", "CIFAR10"): (215, 11088, 212, 606.1),
    ("ResNet19", "CIFAR100"): (172, 13914, 180, 617.2),
}
TEST_SET = 10_000
IMAGES = 8
T = 4

ASSUMPTIONS = [
    "Weights are seeded synthetic (He initialisation) with thresholds balanced to 5-20 % firing on synthetic "
    "images; trained networks fire differently, so the energy follows our firing rates, not the paper's.",
    "Our memory hierarchy (256 KB GLB, LPDDR4 at 8 pJ/bit, 25.6 B/cycle) is a documented choice; the paper does "
    "not state its hierarchy. Weights that do not fit on chip are streamed from DRAM every timestep (each weight "
    "at most once per pass, only the ones events use: docs/hardware.md sec. 7), which is the largest energy item; "
    "SATA-Sim charges DRAM per element at about 58.6 pJ/bit (select it with --dram sata-sim).",
    "T = 4 with fixed T for every image; the paper's networks use the AT unit's early exit (about 2 timesteps on "
    "CIFAR-10), which would roughly halve our per-image figures.",
    "Leakage uses CACTI itrs-lop cells (about 140 mW for the PE memories); itrs-lstp cells leak three orders of "
    "magnitude less.",
    "Energy for the test set = energy per inference x 10,000; FPS = 4 x 500 MHz / cycles per image.",
]


def measure(name: str) -> dict:
    from atsnn.compiler.pipeline import compile_model
    from atsnn.hwsim.engine import simulate
    from atsnn.hwsim.policies import evaluate
    from atsnn.workloads.topologies import build, synthetic_images
    program = compile_model(build(name))
    trace = simulate(program, synthetic_images(IMAGES, 11), T=T, batch_size=4)
    r = evaluate(trace, "fixed")
    hw = program.hardware
    cycles = float(r.cycles.mean())
    e = float(r.energy_pj.mean())
    return dict(fps=hw.system.accelerators * hw.system.clock_hz / cycles, energy_per_inference_mj=e * 1e-9,
                test_set_j=e * 1e-12 * TEST_SET, cycles=cycles,
                dram_share=float(r.energy_by_component["dram"].mean()) / e, cost_table=trace.costs.ref,
                hardware=hw.name)


def table3_markdown() -> str:
    rows = {"VGG16": measure("vgg16"), "ResNet19": measure("resnet19")}
    lines = ["# Table 3 comparison (seed 001): FPS and energy on the default hardware", "",
             f"hardware `{rows['VGG16']['hardware']}` (4 accelerators, 500 MHz), cost table "
             f"`{rows['VGG16']['cost_table']}`, T = {T} fixed, {IMAGES} synthetic images per network", "",
             "| network | ours: FPS | ours: mJ / image | ours: J / 10,000 images | DRAM share | paper CIFAR10: FPS | "
             "paper: J / test set | paper GPU: FPS, J |", "|---|---|---|---|---|---|---|---|"]
    for net, m in rows.items():
        g_fps, g_j, a_fps, a_j = PAPER[(net, "CIFAR10")]
        lines.append(f"| {net} | {m['fps']:.1f} | {m['energy_per_inference_mj']:.2f} | {m['test_set_j']:.1f} | "
                     f"{100 * m['dram_share']:.0f} % | {a_fps} | {a_j} | {g_fps}, {g_j} |")
    lines += ["", "Assumptions that explain the differences:", ""] + [f"- {a}" for a in ASSUMPTIONS]
    return "\n".join(lines) + "\n"


YOLO_T = (64, 128, 256, 512, 1024, 2048)
YOLO_IMAGES = 2
YOLO_MEASURE_T = 8


def yolo_markdown() -> str:
    from atsnn.compiler.pipeline import compile_model
    from atsnn.hwsim.analytic import estimate
    from atsnn.hwsim.functional import run_functional
    from atsnn.workloads.topologies import YOLO_INPUT, build, synthetic_images
    program = compile_model(build("yolov3-tiny"))
    run = run_functional(program, synthetic_images(YOLO_IMAGES, 11, YOLO_INPUT), T=YOLO_MEASURE_T)
    rates, ev = run.rates(program), float(run.input_events.mean())
    hw = program.hardware
    lines = ["", "## Spiking YOLOv3-tiny, 416x416 (seed 004 Table 1): analytic what-if", "",
             f"Seeded synthetic weights, channel-wise 99.9th-percentile thresholds; firing rates measured by a "
             f"functional fixed-point run of the compiled program on {YOLO_IMAGES} synthetic images at "
             f"T = {YOLO_MEASURE_T} (mean {sum(rates.values()) / len(rates):.3f} spikes per neuron per timestep, "
             f"{ev:.3g} bit-serial input events per timestep), then `atsnn estimate` (uniform events, lockstep "
             "statistics sampled on 2048 positions per synapse). Fixed T: the two detection heads run on the PEs "
             "and the AT unit cannot exit early.", "",
             "| T | FPS (4 acc.) | latency / image (s) | J / image | leakage share | DRAM share | Conv1 share of cycles |",
             "|---|---|---|---|---|---|---|"]
    for T in YOLO_T:
        a = estimate(program, rates, T, input_events_per_timestep=ev)
        e = a.energy_per_inference_pj
        step = sum(a.layer_cycles.values())
        lines.append(f"| {T} | {a.fps:.3g} | {a.cycles_per_inference / hw.system.clock_hz:.3g} | {e * 1e-12:.3g} | "
                     f"{100 * a.energy_by_component_pj['leakage'] / e:.0f} % | "
                     f"{100 * a.energy_by_component_pj['dram'] / e:.0f} % | "
                     f"{100 * a.layer_cycles['Conv1'] / step:.0f} % |")
    spiking = [l for l in program.layers if l.neuron != "integrator"]
    n_dram = sum(l.mapping.spikes_in_dram for l in spiking)
    n_spill = sum(not l.mapping.state_resident for l in program.layers)
    c1 = program.layer("Conv1")
    lines += ["", "What the numbers say about this hardware:", "",
              f"- {sum(l.neurons for l in program.layers) / 1e6:.1f} M neurons do not fit {hw.pe_count} PEs of "
              f"{hw.pe.data_memory_bytes} B: {n_spill} of {len(program.layers)} layers spill their state every "
              f"timestep and {n_dram} of {len(spiking)} spike maps exceed the {hw.memory.glb_bytes // 1024} KB GLB "
              "and go to DRAM, so an image takes seconds and leakage over that time dominates the energy.",
              f"- Conv1 ({c1.neurons / 1e6:.2f} M neurons in {c1.mapping.passes} passes per timestep) takes most "
              "cycles: with neurons numbered in C order each PE's chunk is a band of one channel, so an input event "
              "touches most of the passes and is re-broadcast to each. A spatially tiled numbering (all channels "
              "of a band in one pass) would cut this; it is not implemented.",
              "- Seed 004 reports detection accuracy at 64-2048 timesteps on a GPU, not hardware figures; nothing "
              "here is compared with a paper number.", ""]
    return "\n".join(lines)


def write_table3(out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "table3.md"
    path.write_text(table3_markdown() + yolo_markdown())
    return path
