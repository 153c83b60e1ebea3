//! The atomic file writer: symlinks followed, special files refused, unique
//! temporary files cleaned up, errors naming the user's path.

use std::fs;
use std::path::{Path, PathBuf};

use gradlab_nn::{check_output_path, write_atomic, write_atomic_bytes, NnError};

/// Names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn writes_replace_the_content_and_leave_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.json");
    write_atomic_bytes(&path, b"first").unwrap();
    write_atomic(&path, |w| w.write_all(b"second")).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"second");
    assert_eq!(listing(dir.path()), ["notes.json"]);
}

#[cfg(unix)]
#[test]
fn new_files_get_the_usual_permissions_and_existing_ones_keep_theirs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    fs::File::create(&plain).unwrap();
    let ours = dir.path().join("ours");
    write_atomic_bytes(&ours, b"x").unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&ours), mode(&plain));

    fs::set_permissions(&ours, fs::Permissions::from_mode(0o640)).unwrap();
    write_atomic_bytes(&ours, b"y").unwrap();
    assert_eq!(mode(&ours), 0o640);
}

#[cfg(unix)]
#[test]
fn a_symlink_stays_a_symlink_to_the_new_content() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    fs::create_dir(&real_dir).unwrap();
    let target = real_dir.join("model.safetensors");
    fs::write(&target, b"old").unwrap();
    let link = dir.path().join("latest.safetensors");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    write_atomic_bytes(&link, b"new").unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_link(&link).unwrap(), target);
    assert_eq!(fs::read(&target).unwrap(), b"new");
    // The temporary file lived beside the target, and is gone.
    assert_eq!(listing(&real_dir), ["model.safetensors"]);
    assert_eq!(listing(dir.path()), ["latest.safetensors", "real"]);

    // A relative link to a file that does not exist yet creates the file.
    let dangling = dir.path().join("dangling");
    std::os::unix::fs::symlink("real/fresh.bin", &dangling).unwrap();
    write_atomic_bytes(&dangling, b"fresh").unwrap();
    assert!(fs::symlink_metadata(&dangling)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(real_dir.join("fresh.bin")).unwrap(), b"fresh");
    assert_eq!(
        check_output_path(&dangling).unwrap(),
        dir.path().join("real/fresh.bin")
    );
}

fn assert_refused(path: &Path, kind: &str) {
    match write_atomic_bytes(path, b"data") {
        Err(NnError::NotRegularFile { path: p, kind: k }) => {
            assert_eq!(p, path);
            assert_eq!(k, kind);
        }
        other => panic!("{}: expected NotRegularFile, got {other:?}", path.display()),
    }
    let err = check_output_path(path).unwrap_err();
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains(kind), "{err}");
}

#[cfg(unix)]
#[test]
fn dev_null_is_refused_and_left_alone() {
    use std::os::unix::fs::FileTypeExt;
    let null = Path::new("/dev/null");
    assert_refused(null, "a character device");
    assert!(fs::metadata(null).unwrap().file_type().is_char_device());
    // Also through a symlink.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("out");
    std::os::unix::fs::symlink(null, &link).unwrap();
    assert!(matches!(
        write_atomic_bytes(&link, b"x"),
        Err(NnError::NotRegularFile { .. })
    ));
    assert!(fs::metadata(null).unwrap().file_type().is_char_device());
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(listing(Path::new("/dev"))
        .iter()
        .all(|n| !n.starts_with(".null.tmp")));
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_and_left_alone() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    assert_refused(&fifo, "a FIFO");
    assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(listing(dir.path()), ["pipe"]);
}

#[test]
fn a_directory_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("out");
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("inside"), b"keep").unwrap();
    assert_refused(&sub, "a directory");
    assert!(sub.is_dir());
    assert_eq!(listing(&sub), ["inside"]);
    assert_eq!(listing(dir.path()), ["out"]);
}

#[test]
fn stale_temporary_files_of_the_same_target_are_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.json");
    // Left by a save that was killed: no process has this id (above the
    // kernel's largest pid).
    let stale = dir.path().join(".notes.json.tmp-999999999-Ab3xYz");
    // The format earlier gradlab versions used for their temporary files.
    let old_style = dir.path().join(".notes.json.tmp-999999998-7");
    // A temporary file of a save still running (this process).
    let live = dir
        .path()
        .join(format!(".notes.json.tmp-{}-live00", std::process::id()));
    let keep: Vec<PathBuf> = [
        "notes.partial",
        "notes.json.partial",
        ".other.json.tmp-999999999-Ab3xYz",
        ".notes.json.tmp",
        "notes.json.tmp-999999999-x",
    ]
    .iter()
    .map(|n| dir.path().join(n))
    .collect();
    for p in keep.iter().chain([&stale, &old_style, &live]) {
        fs::write(p, b"user data").unwrap();
    }

    write_atomic_bytes(&path, b"{}").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"{}");
    assert!(!stale.exists());
    assert!(!old_style.exists());
    assert!(live.exists());
    for p in &keep {
        assert_eq!(fs::read(p).unwrap(), b"user data", "{}", p.display());
    }
}

#[test]
fn a_failed_write_leaves_nothing_behind_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    fs::write(&path, b"previous").unwrap();
    let err = write_atomic(&path, |w| {
        w.write_all(b"half")?;
        Err(std::io::Error::other("disk full"))
    })
    .unwrap_err();
    assert!(matches!(err, NnError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("report.json"), "{err}");
    assert!(!err.to_string().contains(".report.json.tmp"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"previous");
    assert_eq!(listing(dir.path()), ["report.json"]);
}

#[test]
fn an_unwritable_folder_is_an_error_naming_the_path() {
    // Works as root too: the "folder" is a regular file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"x").unwrap();
    let path = file.join("out.json");
    let err = write_atomic_bytes(&path, b"data").unwrap_err();
    assert!(err.to_string().contains("out.json"), "{err}");
    assert!(check_output_path(&path).is_err());
    assert_eq!(listing(dir.path()), ["file"]);
    assert_eq!(fs::read(&file).unwrap(), b"x");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let ro = dir.path().join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        let probe = ro.join("probe");
        // Root writes anywhere; only check the folder when it is enforced.
        if fs::write(&probe, b"").is_err() {
            let target = ro.join("out.json");
            let err = write_atomic_bytes(&target, b"data").unwrap_err();
            assert!(err.to_string().contains("out.json"), "{err}");
            let err = check_output_path(&target).unwrap_err();
            assert!(err.to_string().contains("out.json"), "{err}");
            assert!(listing(&ro).is_empty());
        } else {
            fs::remove_file(&probe).unwrap();
        }
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn check_output_path_creates_folders_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/out.json");
    let resolved = check_output_path(&path).unwrap();
    assert_eq!(resolved, path);
    assert!(dir.path().join("a/b").is_dir());
    assert!(listing(&dir.path().join("a/b")).is_empty());
    // An existing regular file is fine, and untouched.
    fs::write(&path, b"keep").unwrap();
    check_output_path(&path).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"keep");
    // A path with no file name is not an output file.
    assert!(check_output_path(Path::new("/")).is_err());
}
