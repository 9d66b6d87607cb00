"""Map quantized layers onto the array (docs/hardware.md sec. 7).

Each PE layer gets balanced contiguous chunks of its C-order neurons over
``P = min(pe_count, N)`` PEs and the fewest passes for which a pass's state
(membrane + accumulator) and, if possible, its weights fit the PE data memory
and its spikes fit the output buffer. Weights that do not fit are streamed
from the GLB (or DRAM when the GLB is full); state that cannot stay resident
between timesteps is spilled to the GLB. The output layer goes to the AT unit
when it fits next to the exp table.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from atsnn.config import HardwareConfig
from atsnn.errors import MappingError
from atsnn.program import Layer, LayerMapping


def state_bytes(hw: HardwareConfig, *, at: bool = False) -> int:
    """Bytes of per-neuron state: membrane + accumulator."""
    mem = hw.at.membrane_bits if at else hw.numeric.membrane_bits
    return math.ceil((mem + hw.numeric.accumulator_bits) / 8)


def layer_state_bytes(layer: Layer, hw: HardwareConfig) -> int:
    """Bytes of one neuron's state in ``layer``: membrane + accumulator, or for a sliding PSN its ``k - 1``
    stored currents of ``membrane_bits`` plus the accumulator (docs/hardware.md sec. 11)."""
    from atsnn import psn
    if psn.is_psn_layer(layer):
        return math.ceil((psn.history_entries(layer) * hw.numeric.membrane_bits + hw.numeric.accumulator_bits) / 8)
    return state_bytes(hw, at=layer.neuron == "integrator")


def taps_bytes(layer: Layer, hw: HardwareConfig) -> int:
    """Bytes every PE of a sliding-PSN layer holds for the taps (``ceil(k * psn_tap_bits / 8)``); 0 otherwise."""
    from atsnn import psn
    if not psn.is_psn_layer(layer):
        return 0
    return math.ceil(psn.k_of(layer) * hw.numeric.psn_tap_bits / 8)


def weight_bytes(hw: HardwareConfig, count: int) -> int:
    return math.ceil(count * hw.numeric.weight_bits / 8)


def balanced_chunks(n: int, parts: int) -> np.ndarray:
    base, extra = divmod(n, parts)
    return np.array([base + 1] * extra + [base] * (parts - extra), dtype=np.int64)


def _weights_for_range(layer: Layer, start: int, count: int) -> int:
    """Weight values PE neurons [start, start+count) need (shared conv kernels counted once per channel)."""
    if count <= 0:
        return 0
    hw_per_ch = int(np.prod(layer.shape[1:])) if len(layer.shape) > 1 else 1
    c0, c1 = start // hw_per_ch, (start + count - 1) // hw_per_ch
    total = 0
    for s in layer.synapses:
        if s.op == "dense":
            total += count * s.weight.shape[1]
        elif s.op == "conv2d":
            total += (c1 - c0 + 1) * int(np.prod(s.weight.shape[1:]))
        else:  # conv_transpose2d (Cin, Cout, kh, kw)
            total += (c1 - c0 + 1) * s.weight.shape[0] * s.weight.shape[2] * s.weight.shape[3]
    return total


def total_weights(layer: Layer) -> int:
    return int(sum(s.weight.size for s in layer.synapses))


def map_pe_layer(layer: Layer, hw: HardwareConfig) -> LayerMapping:
    n = layer.neurons
    taps = taps_bytes(layer, hw)  # resident on every PE of a PSN layer, counted with its resident weights
    mem = hw.pe.data_memory_bytes - taps
    sb = layer_state_bytes(layer, hw)
    out_bits = 8 * hw.pe.output_spike_buffer_bytes
    p = min(hw.pe_count, n)
    chunks = balanced_chunks(n, p)
    cmax = int(chunks.max())
    starts = np.concatenate([[0], np.cumsum(chunks)[:-1]])

    def worst_weights(passes: int) -> int:
        worst = 0
        for pe in range(p):
            sub = balanced_chunks(int(chunks[pe]), passes)
            off = int(starts[pe])
            for cnt in sub:
                worst = max(worst, weight_bytes(hw, _weights_for_range(layer, off, int(cnt))))
                off += int(cnt)
        return worst

    if sb > mem:
        raise MappingError(f"layer '{layer.name}': one neuron's state ({sb} B" + (f", plus {taps} B of PSN taps"
                           if taps else "") + f") exceeds pe.data_memory_bytes = {hw.pe.data_memory_bytes}; "
                           f"needs pe.data_memory_bytes >= {sb + taps}")
    min_passes = max(1, math.ceil(cmax * sb / mem), math.ceil(cmax / out_bits))
    passes, weights_resident, wres = None, False, 0
    # try weights resident first (search a bounded number of pass counts), unless one neuron's weights cannot fit
    one = weight_bytes(hw, _weights_for_range(layer, 0, 1))
    search = range(min_passes, min(cmax, min_passes + 64) + 1) if one + sb <= mem else range(0)
    for ps in search:
        npass = math.ceil(cmax / ps)
        w = worst_weights(ps) if p * ps <= 20000 else weight_bytes(hw, _weights_for_range(layer, 0, npass))
        if npass * sb + w <= mem:
            passes, weights_resident, wres = ps, True, w
            break
    if passes is None:
        passes = min_passes
        weights_resident, wres = False, 0
    npass = math.ceil(cmax / passes)
    notes = []
    if not weights_resident:
        notes.append("weights streamed from the memory level above")
    if passes > 1:
        notes.append(f"{passes} passes per timestep (state of {cmax} neurons x {sb} B per PE)")
    streamed = 0 if weights_resident else weight_bytes(hw, total_weights(layer)) * passes
    if taps:
        notes.append(f"PSN taps ({taps} B) resident on every PE")
    return LayerMapping(unit="pe", pes_used=p, passes=int(passes), chunk_sizes=chunks, state_resident=passes == 1,
                        weights_resident=weights_resident, resident_weight_bytes_per_pe=int(wres + taps),
                        resident_state_bytes_per_pe=int(npass * sb),
                        streamed_weight_bytes_per_timestep=int(streamed),
                        spilled_state_bytes_per_timestep=0 if passes == 1 else int(2 * n * sb),
                        weights_in_dram=False, expected_utilisation=float(chunks.mean() / cmax), notes=notes)


def map_at_layer(layer: Layer, hw: HardwareConfig) -> LayerMapping | None:
    """The output layer on the AT unit, or None when it does not fit."""
    c = layer.neurons
    sb = state_bytes(hw, at=True)
    table = hw.at.exp_table_entries * math.ceil(hw.at.exp_table_value_bits / 8)
    free = hw.at.data_memory_bytes - table
    if c * sb > free or c > 8 * hw.at.output_spike_buffer_bytes:
        return None
    w = weight_bytes(hw, total_weights(layer))
    resident = c * sb + w <= free
    return LayerMapping(unit="at", pes_used=1, passes=1, chunk_sizes=np.array([c], dtype=np.int64),
                        state_resident=True, weights_resident=resident,
                        resident_weight_bytes_per_pe=int(w if resident else 0), resident_state_bytes_per_pe=c * sb,
                        streamed_weight_bytes_per_timestep=0 if resident else int(w), spilled_state_bytes_per_timestep=0,
                        weights_in_dram=False, expected_utilisation=1.0,
                        notes=[] if resident else ["output weights streamed from the GLB"])


def map_program_layers(layers: list[Layer], output: str, hw: HardwareConfig) -> bool:
    """Fill ``layer.mapping`` for every layer; returns whether the AT unit holds the output (early exit).

    A network with several integrator layers (output heads, e.g. detection) runs them all on the PEs
    and has no early exit: the AT unit's exit test reads a single classifier output.
    """
    early_exit = False
    heads = [l.name for l in layers if l.neuron == "integrator"]
    for layer in layers:
        if layer.name == output and len(heads) > 1:
            layer.mapping = map_pe_layer(layer, hw)
            layer.mapping.notes.append(f"one of {len(heads)} output heads: runs on PEs, no early exit")
            continue
        if layer.name == output:
            m = map_at_layer(layer, hw)
            if m is not None:
                layer.mapping = m
                early_exit = True
                continue
        layer.mapping = map_pe_layer(layer, hw)
        if layer.name == output:
            layer.mapping.notes.append("output layer does not fit the AT unit: runs on PEs, no early exit")
    # state residency across layers: greedy in layer order within the PE memory budget
    used = 0
    mem = hw.pe.data_memory_bytes
    for layer in layers:
        m = layer.mapping
        if m.unit != "pe":
            continue
        need = m.resident_state_bytes_per_pe + m.resident_weight_bytes_per_pe
        if m.passes == 1 and used + need <= mem:
            used += need
        else:
            if m.state_resident:
                m.state_resident = False
                m.spilled_state_bytes_per_timestep = int(2 * layer.neurons * layer_state_bytes(layer, hw))
                m.notes.append("state spilled to the GLB between timesteps (PE memory shared with other layers)")
            if m.weights_resident and m.passes == 1 and used + m.resident_weight_bytes_per_pe > mem:
                pass
    # GLB capacity: spike maps first (in layer order), then spilled state, then streamed weights; the rest
    # lives in DRAM
    glb_free = hw.memory.glb_bytes
    for layer in layers:
        if layer.neuron == "integrator":
            continue
        need = math.ceil(layer.neurons / 8)
        if need <= glb_free:
            glb_free -= need
        else:
            layer.mapping.spikes_in_dram = True
            layer.mapping.notes.append(f"spike map ({need} B per timestep) does not fit the GLB: written to and read "
                                       "from DRAM")
    for layer in layers:
        m = layer.mapping
        half = m.spilled_state_bytes_per_timestep // 2
        if half == 0:
            continue
        if half <= glb_free:
            glb_free -= half
        else:
            m.state_in_dram = True
            m.notes.append("spilled state does not fit the GLB: kept in DRAM")
    for layer in layers:
        m = layer.mapping
        if not m.weights_resident:
            w = weight_bytes(hw, total_weights(layer))
            if w <= glb_free:
                glb_free -= w
            else:
                m.weights_in_dram = True
                m.notes.append("weights do not fit the GLB: streamed from DRAM every timestep")
    return early_exit


def mapping_table(layers: list[Layer]) -> pd.DataFrame:
    rows = []
    for l in layers:
        m = l.mapping
        rows.append(dict(layer=l.name, neuron=l.neuron, shape="x".join(map(str, l.shape)), neurons=l.neurons,
                         unit=m.unit, pes_used=m.pes_used, neurons_per_pe_max=int(m.chunk_sizes.max()),
                         passes=m.passes, state_resident=m.state_resident, weights_resident=m.weights_resident,
                         resident_weight_bytes_per_pe=m.resident_weight_bytes_per_pe,
                         streamed_weight_bytes_per_timestep=m.streamed_weight_bytes_per_timestep,
                         spilled_state_bytes_per_timestep=m.spilled_state_bytes_per_timestep,
                         weights_in_dram=m.weights_in_dram, state_in_dram=m.state_in_dram,
                         spikes_in_dram=m.spikes_in_dram,
                         expected_utilisation=round(m.expected_utilisation, 3)))
    return pd.DataFrame(rows)
