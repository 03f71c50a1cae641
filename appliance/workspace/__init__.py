"""The research workspace: projects with files, checked names, quotas."""
