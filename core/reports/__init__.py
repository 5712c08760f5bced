"""What coordinators read from the log: task records, quality, pay and exports."""
