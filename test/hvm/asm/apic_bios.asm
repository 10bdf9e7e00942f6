; A 64 KiB "BIOS" for test/hvm/apic.test.ts: from the reset vector, in real
; mode, it points vectors 0x41 and 0x51 of the IVT at counters, stores
; CPUID leaf 1's EDX at 0x504, says it is ready (0x502 = 1) and idles in
; STI; HLT. Neither handler signals an EOI, so vector 0x41 stays in
; service in the local APIC after it came once.
;   0x500  times vector 0x41 came
;   0x501  times vector 0x51 came
;   0x503  0x500's value when 0x51 came
bits 16
org 0
start:
    cli
    xor ax, ax
    mov ds, ax
    mov ss, ax
    mov sp, 0x7000
    mov word [0x41*4], h41
    mov word [0x41*4+2], 0xf000
    mov word [0x51*4], h51
    mov word [0x51*4+2], 0xf000
    mov eax, 1
    cpuid
    mov [0x504], edx
    mov byte [0x500], 0
    mov byte [0x501], 0
    mov byte [0x502], 1
idle:
    sti
    hlt
    jmp idle
h41:
    inc byte [0x500]
    iret
h51:
    inc byte [0x501]
    mov al, [0x500]
    mov [0x503], al
    iret
    times 0xfff0 - ($ - $$) db 0
reset:
    jmp 0xf000:start
    times 0x10000 - ($ - $$) db 0
