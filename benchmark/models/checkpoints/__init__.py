"""The weights catalogue (:mod:`.catalogue`, one data table) and the converters that load
published checkpoint files strictly (:mod:`.convert`)."""
