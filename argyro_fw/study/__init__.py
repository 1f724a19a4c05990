"""The whole study from one config file: validation (:mod:`config`), the DAG (:mod:`workflow`), the
deciding fireworks (:mod:`tasks`) and the energy engines (:mod:`energy`)."""
