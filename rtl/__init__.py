"""rtl: the accelerator in Amaranth (PE, AT unit, array), Verilog export, synthesis."""
