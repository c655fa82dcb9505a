"""The delivery stage: renditions per channel with watermarks, provenance inside every file
(A1111 infotext, XMP, C2PA), exports, posting schedules, and serving files from storage."""
