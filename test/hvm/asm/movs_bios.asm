; A 64 KiB "BIOS" for test/hvm/rep_movs.test.ts: from the reset vector, in
; real mode, three copies out of the legacy VGA window (MMIO: every read is
; the device model's) into RAM, then HLT.
;   1. rep movsd, 1024 dwords from A000:0000 to 1000:0000 (one page each side)
;   2. rep movsd, 16 dwords from A000:0FF0 to 2000:0000 (the source crosses a page)
;   3. rep movsb, 10 bytes from A000:0100 to 3000:0001
bits 16
org 0
start:
    cli
    xor ax, ax
    mov ss, ax
    mov sp, 0x7000
    cld
    mov ax, 0xa000
    mov ds, ax
    mov ax, 0x1000
    mov es, ax
    xor si, si
    xor di, di
    mov cx, 1024
    rep movsd
    mov ax, 0x2000
    mov es, ax
    mov si, 0x0ff0
    xor di, di
    mov cx, 16
    rep movsd
    mov ax, 0x3000
    mov es, ax
    mov si, 0x0100
    mov di, 1
    mov cx, 10
    rep movsb
done:
    hlt
    jmp done
    times 0xfff0 - ($ - $$) db 0
reset:
    jmp 0xf000:start
    times 0x10000 - ($ - $$) db 0
