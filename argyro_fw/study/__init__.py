"""The whole study from one config file: validation and every default (:mod:`config`), the pure
decisions (:mod:`decisions`) and the typed records passed between fireworks (:mod:`outputs`). The DAG
and its fireworks are in :mod:`argyro_fw.flows.study`."""
