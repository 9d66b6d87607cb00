"""Compiler: import NIR, convert ANNs, quantize and map onto the array, producing a Program."""
