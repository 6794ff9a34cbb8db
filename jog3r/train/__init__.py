"""Training: the joint fine-tune ``L_total = L_gen + lambda * L_rec`` (config, data, loop, run folders).

Nothing in the package imports :mod:`jog3r.train`; it may import everything else.
"""
