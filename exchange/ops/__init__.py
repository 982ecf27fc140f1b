"""Running the exchange: health probes, every process's metrics, Celery's metrics and beat's sign of life, slow
queries, profiling, the operations endpoints, JSON logs with request ids, retention, webhooks with their delivery
task, and the deployment guide's success criteria (`deployment_check`)."""
