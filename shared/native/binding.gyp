{
  "targets": [
    {
      "target_name": "xenemu_shm",
      "sources": ["shm.cc"],
      "cflags_cc": ["-O2", "-std=c++17"],
      "libraries": ["-lrt"]
    },
    {
      "target_name": "xenemu_dirty",
      "sources": ["dirty.cc"],
      "cflags_cc": ["-O2", "-std=c++17"],
      "libraries": ["-lrt"]
    },
    {
      "target_name": "xenemu_sock",
      "sources": ["sock.cc"],
      "cflags_cc": ["-O2", "-std=c++17"]
    },
    {
      "target_name": "xenemu_net",
      "sources": ["tap.cc"],
      "cflags_cc": ["-O2", "-std=c++17"]
    },
    {
      "target_name": "xenemu_privcmd",
      "type": "shared_library",
      "product_extension": "so",
      "sources": ["xenemu_privcmd.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-fvisibility=default"],
      "ldflags": ["-Wl,--no-undefined"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
