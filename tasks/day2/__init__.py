"""Day-2 operations on a running lab: status, Flux controls, the HPA demo, debugging, watching, tearing down. They share helpers through tasks.core, never by importing one another."""
