"""Running things at scale: the benchmark (`benchmark`, parallel and resumable), its report and figures
(`report`), the optimum tables (`optima`) and the demo (`demo`)."""
