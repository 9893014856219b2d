package netns

// sysSetns is the setns(2) system call number (the syscall package does not name it).
const sysSetns = 308
