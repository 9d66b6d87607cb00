"""The L_imp-trained digits CNN keeps its accuracy at one timestep on the accelerator (seed 001 Fig. 4)."""

from atsnn.workloads.atsn_report import measure


def test_limp_model_beats_the_converted_model_at_low_timesteps():
    limp, converted = measure("digits_cnn_atsn"), measure("digits_cnn_clip")
    assert limp["fixed"][1] >= converted["fixed"][1] + 0.05  # measured 96.5 % vs 85.4 %
    assert limp["fixed"][1] >= 0.94
    assert limp["atsn_accuracy"] >= converted["atsn_accuracy"]
    assert limp["atsn_energy_uj"] < limp["fixed8_energy_uj"]
