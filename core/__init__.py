"""The ground floor every stage may use, importing no stage: config base, progress, chunking, classes, the stage registry."""
