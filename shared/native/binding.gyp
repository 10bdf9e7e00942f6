{
  "targets": [
    {
      "target_name": "xenemu_shm",
      "sources": ["shm.cc"],
      "cflags_cc": ["-O2", "-std=c++17"],
      "libraries": ["-lrt"]
    },
    {
      "target_name": "xenemu_sock",
      "sources": ["sock.cc"],
      "cflags_cc": ["-O2", "-std=c++17"]
    }
  ]
}
