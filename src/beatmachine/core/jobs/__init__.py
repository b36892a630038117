"""Background jobs: the queue (taskiq), periodic jobs, and jobs that failed for good."""

from beatmachine.core.jobs.queue import JobCall, JobQueue, UnknownJob, create_broker
from beatmachine.core.jobs.scheduler import PeriodicJob, Scheduler

__all__ = ["JobCall", "JobQueue", "PeriodicJob", "Scheduler", "UnknownJob", "create_broker"]
