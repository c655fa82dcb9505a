#!/bin/sh
# Create docker/secrets/ with random values, once. Existing files are never overwritten, so
# running it again is safe (and changing a password means editing both files that hold it).
set -eu
cd "$(dirname "$0")"

random() {
    LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c "${1:-40}"
}

write() {
    # write <name> <content>
    if [ -e "secrets/$1" ]; then
        echo "secrets/$1 exists, kept"
        return
    fi
    printf '%s\n' "$2" >"secrets/$1"
    # Compose mounts secret files as they are; the app runs as uid 10001 and must read them.
    # The directory (0700) is what keeps other users on this host out.
    chmod 0644 "secrets/$1"
    echo "secrets/$1 created"
}

mkdir -p secrets
chmod 0700 secrets
# Keep them out of git without relying on the repository's .gitignore.
[ -e secrets/.gitignore ] || printf '*\n' >secrets/.gitignore

postgres_password=$(cat secrets/postgres_password 2>/dev/null || random)
minio_password=$(cat secrets/minio_root_password 2>/dev/null || random)

write secret_key "$(random 64)"
write postgres_password "$postgres_password"
write database_url "postgres://studio:${postgres_password}@postgres:5432/studio"
write minio_root_password "$minio_password"
# Studio's S3 secret key (STUDIO_S3_SECRET_ACCESS_KEY_FILE); with the bundled MinIO it is the
# root user's password. For an outside bucket, replace it with that bucket's secret key.
write s3_secret_access_key "$minio_password"
